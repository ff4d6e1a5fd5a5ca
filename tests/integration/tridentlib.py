"""Helpers for the integration tests: real processes, a protocol client.

Everything here speaks docs/PROTOCOL.md directly with python3-msgpack (an
independent implementation), starts real tridentd and redis-server
processes on free ports in temporary directories, and stops them by the
PID it started. Waits poll a condition with a deadline; none sleeps a
fixed time as synchronization.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import msgpack

BUILD = os.environ.get("TRIDENT_BUILD", "")


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: set TRIDENT_BUILD to the build directory")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, what="condition"):
    """Polls cond() until it is truthy; returns its value or raises."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Client:
    """One connection. request() pipelines nothing; send()/reply() do."""

    def __init__(self, port=None, path=None, hello=None, timeout=10.0):
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.rid = 0
        self.replies = {}
        self.pushes = []
        self.closed = False
        if hello is not None:
            self.hello_reply = self.request("HELLO", version=1, **hello)

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, op, **fields):
        self.rid += 1
        body = {"op": op, "rid": self.rid}
        body.update(fields)
        self.send_msg(body)
        return self.rid

    def send_msg(self, body):
        data = msgpack.packb(body, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def read_frame(self):
        """The next frame as a dict, or None at EOF."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return msgpack.unpackb(body, raw=False)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def pump(self):
        """Reads one frame and files it as a reply or a push."""
        m = self.read_frame()
        if m is None:
            raise ConnectionError("connection closed by the broker")
        if m.get("op") in ("OK", "ERROR") and "rid" in m:
            self.replies[m["rid"]] = m
        else:
            self.pushes.append(m)
        return m

    def reply(self, rid):
        """The reply to request rid; raises ProtocolError for an ERROR."""
        while rid not in self.replies:
            self.pump()
        m = self.replies.pop(rid)
        if m["op"] == "ERROR":
            raise ProtocolError(m["code"], m["message"])
        return m

    def request(self, op, **fields):
        return self.reply(self.send(op, **fields))

    def error(self, op, **fields):
        """Sends op; returns the ERROR reply's code (fails if it was OK)."""
        try:
            self.request(op, **fields)
        except ProtocolError as e:
            return e.code
        raise AssertionError(f"{op} succeeded; expected an error")

    def push(self, op, timeout=10.0):
        """The next push with this op (others stay queued)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.pushes):
                if m["op"] == op:
                    return self.pushes.pop(i)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {op} push")
            self.pump()


class Redis:
    """A real redis-server on a free port in a temporary directory."""

    def __init__(self, appendfsync="always"):
        self.dir = tempfile.mkdtemp(prefix="trident-redis-")
        self.port = None
        self.proc = None
        self.appendfsync = appendfsync
        self.start()

    def start(self):
        for _ in range(5):
            self.port = self.port or free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                 "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                 "--logfile", os.path.join(self.dir, "redis.log")],
                stdin=subprocess.DEVNULL)
            try:
                wait_for(lambda: self.ping() or self.proc.poll() is not None, 10, "redis")
            except TimeoutError:
                pass
            if self.proc.poll() is None:
                return
            self.port = None
        raise RuntimeError("redis-server would not start")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Broker:
    """A real tridentd; embedded Redis unless redis_url is given."""

    def __init__(self, redis_url=None, args=(), env=None, port=None, data_dir=None):
        self.dir = tempfile.mkdtemp(prefix="trident-broker-")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.port = port or free_port()
        self.redis_url = redis_url
        self.args = list(args)
        self.env = env
        self.log = os.path.join(self.dir, "tridentd.log")
        self.proc = None
        self.start()

    def start(self):
        cmd = [binary("server/tridentd"), "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", self.data_dir, "-vv", *self.args]
        if self.redis_url:
            cmd += ["--redis", self.redis_url]
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        wait_for(self._ready, 20, "tridentd to accept and reach Redis")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"tridentd exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            c = Client(self.port)
        except OSError:
            return False
        try:
            c.request("PING")
            c.request("STATS")  # needs Redis
            return True
        except ProtocolError:
            return False
        finally:
            c.close()

    def client(self, **hello):
        return Client(self.port, hello=hello or None)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.terminate()
        shutil.rmtree(self.dir, ignore_errors=True)
