// The classic way of doing netd's job by hand, with Node.js's `net` module, as netd-bench's peer.
//   node peer.js rpc PATH          newline-delimited JSON-RPC 2.0 on a Unix socket, answering netd.ping
//   node peer.js hold PORT COUNT   open COUNT TCP connections to 127.0.0.1:PORT and hold them idle
'use strict';
const net = require('net');
const fs = require('fs');

const [mode, ...args] = process.argv.slice(2);

if (mode === 'rpc') {
  const path = args[0];
  try { fs.unlinkSync(path); } catch (_) {}
  const server = net.createServer((socket) => {
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      pending += chunk;
      let newline;
      let out = '';
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let request;
        try { request = JSON.parse(line); } catch (_) {
          out += JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }) + '\n';
          continue;
        }
        if (request.method === 'netd.ping') {
          out += JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { pong: true, version: 'node' } }) + '\n';
        } else {
          out += JSON.stringify({ jsonrpc: '2.0', id: request.id ?? null, error: { code: -32601, message: 'Method not found' } }) + '\n';
        }
      }
      if (out) socket.write(out);
    });
    socket.on('error', () => {});
  });
  server.listen(path, () => console.log('ready'));
} else if (mode === 'hold') {
  const port = Number(args[0]);
  const count = Number(args[1]);
  const sockets = [];
  console.log('baseline');
  setTimeout(() => {
    let connected = 0;
    const open = () => {
      // In batches, so that the listener's backlog is never overrun.
      for (let i = 0; i < 200 && sockets.length < count; i++) {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          connected += 1;
          if (connected === count) setTimeout(() => console.log('held ' + connected), 500);
          else if (connected === sockets.length) open();
        });
        socket.on('error', (error) => { console.log('error ' + error.code); process.exit(1); });
        sockets.push(socket);
      }
    };
    open();
  }, 1000);
} else {
  console.error('usage: node peer.js rpc PATH | hold PORT COUNT');
  process.exit(2);
}
