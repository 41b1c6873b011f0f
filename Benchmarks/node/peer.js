// The classic way of doing netd's job by hand, with Node.js's `net` module, as netd-bench's peer.
//   node peer.js rpc PATH          newline-delimited JSON-RPC 2.0 on a Unix socket: netd.ping and socket.* by hand
//   node peer.js hold PORT COUNT   open COUNT TCP connections to 127.0.0.1:PORT and hold them idle
//   node peer.js pipe PORT TARGET  a relay as people write it with `net`: listen on 127.0.0.1:PORT and pipe
//                                  each connection to TARGET (a port on 127.0.0.1, or a Unix socket path)
//   node peer.js cluster PORT N    Node's cluster: a primary and N workers sharing 127.0.0.1:PORT
//                                  (round-robin), each answering HTTP with a body naming the worker
'use strict';
const net = require('net');
const fs = require('fs');

const [mode, ...args] = process.argv.slice(2);

if (mode === 'rpc') {
  // netd's job done by hand, as a person would write it with `net`: a Map of sockets, JSON.parse,
  // socket.write; no validation, no history. It serves netd.ping, socket.connect, socket.write,
  // socket.read (from what is buffered, waiting up to waitMs), socket.get and socket.close.
  const path = args[0];
  try { fs.unlinkSync(path); } catch (_) {}
  const sockets = new Map();
  let nextId = 1;
  const info = (entry) => ({
    id: entry.id, role: 'client', kind: 'tcp', state: entry.socket.readyState,
    remote: { address: entry.socket.remoteAddress, port: entry.socket.remotePort },
    bytesRead: entry.socket.bytesRead, bytesWritten: entry.socket.bytesWritten, buffered: entry.buffered,
  });
  const take = (entry, maxBytes) => {
    const chunks = [];
    let length = 0;
    while (entry.chunks.length > 0 && length < maxBytes) {
      let chunk = entry.chunks[0];
      if (length + chunk.length > maxBytes) {
        entry.chunks[0] = chunk.subarray(maxBytes - length);
        chunk = chunk.subarray(0, maxBytes - length);
      } else {
        entry.chunks.shift();
      }
      chunks.push(chunk);
      length += chunk.length;
    }
    entry.buffered -= length;
    if (entry.buffered < 1 << 20 && entry.socket.isPaused()) entry.socket.resume();
    const data = Buffer.concat(chunks);
    return { data: data.toString('utf8'), encoding: 'utf8', bytes: data.length, eof: entry.ended && entry.buffered === 0 };
  };
  const server = net.createServer((client) => {
    let pending = '';
    client.setEncoding('utf8');
    const reply = (id, result) => client.write(JSON.stringify({ jsonrpc: '2.0', id, result }) + '\n');
    const fail = (id, code, message) => client.write(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }) + '\n');
    const handle = (request) => {
      const params = request.params || {};
      const entry = sockets.get(params.id);
      switch (request.method) {
        case 'netd.ping':
          return reply(request.id, { pong: true, version: 'node' });
        case 'socket.connect': {
          const socket = net.connect({ host: params.host || 'localhost', port: params.port });
          const created = { id: nextId++, socket, chunks: [], buffered: 0, ended: false, waiters: [] };
          socket.on('connect', () => { sockets.set(created.id, created); reply(request.id, info(created)); });
          socket.on('data', (chunk) => {
            created.chunks.push(chunk);
            created.buffered += chunk.length;
            if (created.buffered >= 1 << 20) socket.pause();
            const waiters = created.waiters;
            created.waiters = [];
            for (const wake of waiters) wake();
          });
          socket.on('end', () => { created.ended = true; });
          socket.on('error', (error) => { if (!sockets.has(created.id)) fail(request.id, -32004, error.code); });
          return;
        }
        case 'socket.write':
          if (!entry) return fail(request.id, -32001, 'no socket');
          return entry.socket.write(Buffer.from(params.data, params.encoding || 'utf8'), () => reply(request.id, { bytes: Buffer.byteLength(params.data) }));
        case 'socket.read': {
          if (!entry) return fail(request.id, -32001, 'no socket');
          const maxBytes = params.maxBytes || 65536;
          if (entry.buffered > 0 || !params.waitMs) return reply(request.id, take(entry, maxBytes));
          const timer = setTimeout(() => { entry.waiters = entry.waiters.filter((w) => w !== wake); reply(request.id, take(entry, maxBytes)); }, params.waitMs);
          const wake = () => { clearTimeout(timer); reply(request.id, take(entry, maxBytes)); };
          entry.waiters.push(wake);
          return;
        }
        case 'socket.get':
          if (!entry) return fail(request.id, -32001, 'no socket');
          return reply(request.id, info(entry));
        case 'socket.close':
          if (!entry) return fail(request.id, -32001, 'no socket');
          entry.socket.destroy();
          sockets.delete(params.id);
          return reply(request.id, { id: entry.id, state: 'closed' });
        default:
          return fail(request.id ?? null, -32601, 'Method not found');
      }
    };
    client.on('data', (chunk) => {
      pending += chunk;
      let newline;
      client.cork();
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let request;
        try { request = JSON.parse(line); } catch (_) { fail(null, -32700, 'Parse error'); continue; }
        handle(request);
      }
      process.nextTick(() => client.uncork());
    });
    client.on('error', () => {});
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
} else if (mode === 'pipe') {
  const port = Number(args[0]);
  const target = /^[0-9]+$/.test(args[1]) ? { host: '127.0.0.1', port: Number(args[1]) } : { path: args[1] };
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ ...target, allowHalfOpen: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(port, '127.0.0.1', () => console.log('ready'));
} else if (mode === 'cluster') {
  const cluster = require('cluster');
  const http = require('http');
  const [port, workers] = [Number(args[0]), Number(args[1])];
  if (cluster.isPrimary) {
    let listening = 0;
    for (let i = 0; i < workers; i++) {
      cluster.fork({ WORKER_NAME: 'node-' + i }).on('listening', () => { if (++listening === workers) console.log('ready'); });
    }
  } else {
    http.createServer((request, response) => {
      response.setHeader('Connection', 'close');
      response.end('served by ' + process.env.WORKER_NAME + '\n');
    }).listen(port, '127.0.0.1');
  }
} else {
  console.error('usage: node peer.js rpc PATH | hold PORT COUNT | pipe PORT TARGET | cluster PORT N');
  process.exit(2);
}
