#!/usr/bin/env python3
"""How does a Redis client cope when the network is slow, then resets? A test with netd's faults.

Usage: faults_redis.py NETD_SOCKET REDIS_PORT

It puts a netd forward in front of a real Redis, talks to Redis through it with a small client
that retries once after a reset, adds 200 ms of latency and checks that the client waits it out,
then adds a reset and checks that the client reconnects and carries on. Every fault is then found
in the history of the connection it hit. Exits 0 when every check passes.
"""
import json
import socket
import sys
import time


class Netd:
    """netd's JSON-RPC, one request per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.lines = self.sock.makefile("rb")
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(self.lines.readline())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']['message']}")
        return answer["result"]


class RedisClient:
    """The client under test: RESP over TCP, one reconnect and retry after a reset."""

    def __init__(self, port):
        self.port = port
        self.reconnects = 0
        self.connect()

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.lines = self.sock.makefile("rb")

    def command(self, *words):
        try:
            return self.send(words)
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            self.reconnects += 1
            self.connect()
            return self.send(words)

    def send(self, words):
        message = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        self.sock.sendall(message.encode())
        line = self.lines.readline()
        if not line:
            raise ConnectionResetError("Redis closed the connection")
        if line.startswith(b"$") and line != b"$-1\r\n":
            line = self.lines.readline()
        return line.decode().strip()


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        sys.exit(1)


def main():
    netd_socket, redis_port = sys.argv[1], int(sys.argv[2])
    netd = Netd(netd_socket)
    front = netd.call("server.listen", host="127.0.0.1", port=0, label="redis-under-test",
                      forward={"host": "127.0.0.1", "port": redis_port})
    client = RedisClient(front["local"]["port"])
    check(client.command("SET", "greeting", "hello") == "+OK", "SET through the forward")

    # 200 ms more on every reply (downstream: from Redis toward the client).
    latency = netd.call("fault.add", target=front["id"], type="latency", ms=200, direction="downstream", seed=1)["fault"]
    start = time.monotonic()
    reply = client.command("GET", "greeting")
    elapsed = (time.monotonic() - start) * 1000
    check(reply == "hello" and elapsed >= 200, f"GET waits out the latency ({elapsed:.0f} ms)")
    netd.call("fault.remove", id=latency["id"])

    # Reset every connection one second after it opened: the open one first.
    reset = netd.call("fault.add", target=front["id"], type="reset", afterMs=1000)["fault"]
    time.sleep(1.2)
    reply = client.command("GET", "greeting")
    check(reply == "hello" and client.reconnects == 1, "after the reset the client reconnects and gets its answer")
    netd.call("fault.remove", id=reset["id"])

    # What happened to the first connection, from its history.
    accepted = [s for s in netd.call("socket.list", server=front["id"])["sockets"] if s["role"] == "accepted"]
    first = min(s["id"] for s in accepted)
    events = netd.call("history.get", id=first)["events"]
    details = [e["detail"]["detail"] for e in events if e["type"] == "fault"]
    check("delayed 200 ms" in details and "reset" in details, f"connection {first}'s history says so: {details}")
    netd.call("server.close", id=front["id"])


if __name__ == "__main__":
    main()
