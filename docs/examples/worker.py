#!/usr/bin/env python3
"""A worker in the style of Node's cluster, with netd as the primary.

Each worker loops on `server.accept` with `handoff: true`: netd hands it the next accepted connection
(the descriptor arrives with SCM_RIGHTS on the answer line) and the worker serves it itself. Start as
many as you like, in any language; netd serves waiting workers in the order they began to wait.

    python3 worker.py SOCKET SERVER_ID [NAME]

It answers each HTTP request with a short body naming the worker, then closes the connection. It stops
on SIGTERM, or when netd answers an error (the server is not yours, or netd no longer holds it).
"""
import base64
import json
import socket
import sys


def main():
    path, server = sys.argv[1], int(sys.argv[2])
    name = sys.argv[3] if len(sys.argv) > 3 else str(__import__("os").getpid())
    rpc = socket.socket(socket.AF_UNIX)
    rpc.connect(path)
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "server.accept",
                          "params": {"id": server, "waitMs": 1000, "handoff": True}}).encode() + b"\n"
    pending = b""
    served = 0
    while True:
        rpc.sendall(request)
        descriptor = None
        while b"\n" not in pending:
            data, fds, _, _ = socket.recv_fds(rpc, 65536, 1)
            if not data:
                return served
            pending += data
            if fds:
                descriptor = fds[0]
        line, pending = pending.split(b"\n", 1)
        answer = json.loads(line)
        if "error" in answer:
            return served
        if answer["result"]["socket"] is None:
            continue
        connection = socket.socket(fileno=descriptor)
        received = base64.b64decode(answer["result"]["data"])
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        body = f"served by {name}\n".encode()
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        connection.close()
        served += 1


if __name__ == "__main__":
    try:
        print(main(), flush=True)
    except KeyboardInterrupt:
        pass
