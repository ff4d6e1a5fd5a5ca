#!/usr/bin/python3
"""try.py: submit one task to a running tridentd and print its result.

    scripts/try.py [--broker HOST:PORT] NAME [PAYLOAD]

A small client of docs/PROTOCOL.md (python3-msgpack): SUBMIT with
push_result, then wait for the RESULT push. Exit status: 0 succeeded,
1 the task failed (dead or cancelled), 2 usage or connection error.
"""
import argparse
import socket
import struct
import sys

import msgpack


def frame(body):
    data = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I", len(data)) + data


def frames(sock):
    buf = b""
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            yield msgpack.unpackb(buf[4:4 + n], raw=False)
            buf = buf[4 + n:]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        buf += chunk


def main():
    ap = argparse.ArgumentParser(description="Submit one task and print its result.")
    ap.add_argument("--broker", default="127.0.0.1:7878")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the result")
    ap.add_argument("name")
    ap.add_argument("payload", nargs="?", default="")
    a = ap.parse_args()
    host, _, port = a.broker.rpartition(":")
    try:
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=a.timeout)
        sock.sendall(frame({"op": "SUBMIT", "rid": 1, "name": a.name,
                            "payload": a.payload.encode(), "push_result": True}))
        for m in frames(sock):
            if m.get("op") == "ERROR":
                print(f"error {m.get('code')}: {m.get('message')}", file=sys.stderr)
                return 2
            if m.get("op") == "RESULT":
                if m.get("state") == "succeeded":
                    sys.stdout.buffer.write(m.get("result", b"") + b"\n")
                    return 0
                print(f"{m.get('state')}: {m.get('error_code')}: {m.get('error')}", file=sys.stderr)
                return 1
    except (OSError, ConnectionError) as e:
        print(f"try.py: {a.broker}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
