"""Helpers for the integration tests: real processes, a protocol client.

Everything here speaks docs/PROTOCOL.md directly with python3-msgpack (an
independent implementation), starts real tridentd and redis-server
processes on free ports in temporary directories, and stops them by the
PID it started. Waits poll a condition with a deadline; none sleeps a
fixed time as synchronization.

    Redis       a real redis-server (external-Redis tests)
    Broker      a real tridentd (-vv, log in its directory); stop() checks
                that it exited 0 with no sanitizer report
    Client      one connection: send/reply/push, raw bytes, EOF checks
    Worker      a Client that said HELLO as a worker (CREDIT, ACK, FAIL)
    WorkerProcess  a real trident-worker (pre-fork master and its children);
                stop() checks that it exited 0 with no sanitizer report
    BrokerTest  unittest base: start_broker/start_redis/start_worker_process
                with cleanups that check the exit and print the logs when a
                test failed
    proc_*      what /proc says of a process: children, name, state, age

Environment: TRIDENT_BUILD (the build directory, required),
TRIDENT_KEEP_LOGS=1 keeps the temporary directories (logs, data).
"""
import glob
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack

BUILD = os.environ.get("TRIDENT_BUILD", "")
KEEP = os.environ.get("TRIDENT_KEEP_LOGS") == "1"

# Codes after which the broker closes the connection (PROTOCOL.md section 6).
CLOSING_CODES = {"BAD_FRAME", "FRAME_TOO_LARGE", "UNSUPPORTED_VERSION", "AUTH_FAILED",
                 "TOO_MANY_CONNECTIONS", "IDLE_TIMEOUT"}

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


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


def now_ms():
    return int(time.time() * 1000)


def frame(body):
    """A frame of a msgpack-encodable object (str as str, bytes as bin)."""
    data = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I", len(data)) + data


def raw_frame(data):
    """A frame around raw body bytes."""
    return struct.pack(">I", len(data)) + data


def proc_children(pid):
    """The pids of pid's children (those of all its threads), from /proc;
    [] once pid is gone."""
    kids = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                kids += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread or the process ended while we looked
    return kids


def _proc_stat(pid):
    """The fields of /proc/pid/stat after the command name, or None if pid is
    gone (field 3, the state, is element 0)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def proc_name(pid):
    """The command name of pid (/proc/pid/comm), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_state(pid):
    """The state letter of pid (R, S, D, Z...), or None if it is gone."""
    fields = _proc_stat(pid)
    return fields[0] if fields else None


def proc_gone(pid):
    """True once pid has ended: no such process, or a zombie (an orphan whose
    new parent has not reaped it yet: it runs no code and holds no files)."""
    return proc_state(pid) in (None, "Z")


def proc_age(pid):
    """Seconds since pid started, or None if it is gone."""
    fields = _proc_stat(pid)
    if not fields:
        return None
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime


class ProtocolError(Exception):
    def __init__(self, code, message, reply=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class Client:
    """One connection. request() waits for its reply; send()/reply() pipeline.

    Every frame read is filed: replies (OK/ERROR with a rid) by rid, anything
    else (pushes, and ERRORs without rid) in self.pushes, in arrival order;
    self.arrivals records (op, rid or None) of every frame in arrival order.
    """

    def __init__(self, port=None, path=None, hello=None, timeout=10.0, rcvbuf=None):
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
        else:
            self.sock = socket.socket(socket.AF_INET)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        try:
            if path:
                self.sock.connect(path)
            else:
                self.sock.connect(("127.0.0.1", port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.sock.close()
            raise
        self.timeout = timeout
        self.buf = b""
        self.rid = 0
        self.replies = {}
        self.pushes = []
        self.arrivals = []
        self.closed = False
        self.hello_reply = None
        if hello is not None:
            self.hello_reply = self.request("HELLO", version=1, **hello)

    def close(self):
        self.sock.close()

    # -- sending ---------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, op, **fields):
        self.rid += 1
        body = {"op": op, "rid": self.rid}
        body.update(fields)
        self.send_msg(body)
        return self.rid

    def send_msg(self, body):
        self.sock.sendall(frame(body))

    # -- reading ---------------------------------------------------------

    def read_frame(self, timeout=None):
        """The next frame as a dict, or None at EOF (or a reset).

        Raises TimeoutError when nothing whole arrives within timeout
        (default: the connection's timeout)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return msgpack.unpackb(body, raw=False)
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the broker in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise TimeoutError("no frame from the broker in time") from None
            except ConnectionResetError:
                chunk = b""
            self.buf += chunk
            if not chunk:
                self.closed = True
                if len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
                    return None

    def pump(self, timeout=None):
        """Reads one frame and files it as a reply or a push."""
        m = self.read_frame(timeout)
        if m is None:
            raise ConnectionError("connection closed by the broker")
        rid = m.get("rid") if m.get("op") in ("OK", "ERROR") else None
        self.arrivals.append((m.get("op"), rid))
        if rid is not None:
            self.replies[rid] = m
        else:
            self.pushes.append(m)
        return m

    def raw_reply(self, rid, timeout=None):
        """The reply to request rid, OK or ERROR, as a dict."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while rid not in self.replies:
            self.pump(max(0.0, deadline - time.monotonic()))
        return self.replies.pop(rid)

    def reply(self, rid, timeout=None):
        """The reply to request rid; raises ProtocolError for an ERROR."""
        m = self.raw_reply(rid, timeout)
        if m["op"] == "ERROR":
            raise ProtocolError(m["code"], m["message"], m)
        return m

    def has_reply(self, rid):
        return rid in self.replies

    def request(self, op, **fields):
        """Sends op and waits for its reply (the connection's timeout);
        raises ProtocolError for an ERROR."""
        return self.reply(self.send(op, **fields))

    def error(self, op, **fields):
        """Sends op; returns the ERROR reply (fails if it was OK)."""
        m = self.raw_reply(self.send(op, **fields))
        if m["op"] != "ERROR":
            raise AssertionError(f"{op} succeeded ({m}); expected an error")
        return m

    def error_code(self, op, **fields):
        return self.error(op, **fields)["code"]

    def push(self, op, timeout=10.0):
        """The next push with this op (others stay queued)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.pushes):
                if m.get("op") == op:
                    return self.pushes.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {op} push within {timeout} s")
            self.pump(left)

    def take_pushes(self, op):
        """Removes and returns the queued pushes with this op."""
        got = [m for m in self.pushes if m.get("op") == op]
        self.pushes = [m for m in self.pushes if m.get("op") != op]
        return got

    def sync(self):
        """A PING round trip: every frame the broker sent before answering
        it has been read and filed when this returns."""
        self.request("PING")

    def expect_close(self, timeout=5.0):
        """Reads until EOF; returns the frames read. Fails if the
        connection is still open after timeout."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.read_frame(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"the broker did not close the connection; got {frames}")
            if m is None:
                return frames
            frames.append(m)

    def is_open(self):
        """True if a PING is answered on this connection."""
        try:
            self.reply(self.send("PING"), 5)
            return True
        except (ConnectionError, OSError):
            return False


class Worker(Client):
    """A connection that said HELLO as a worker; credits after HELLO."""

    _serial = 0

    def __init__(self, port, queues=("default",), capacity=10, credits=0, worker_id=None,
                 **extra):
        Worker._serial += 1
        self.worker_id = worker_id or f"w{os.getpid()}-{Worker._serial}"
        hello = {"role": "worker", "worker_id": self.worker_id, "queues": list(queues),
                 "capacity": capacity, "client": "tridentlib-worker", "host": "testhost",
                 "pid": os.getpid()}
        hello.update(extra)
        super().__init__(port, hello=hello)
        if credits:
            self.credit(credits)

    def credit(self, n):
        return self.request("CREDIT", credits=n)

    def task(self, timeout=10.0):
        return self.push("TASK", timeout)

    def tasks(self, n, timeout=10.0):
        return [self.task(timeout) for _ in range(n)]

    def ack(self, task_id, result=b""):
        return self.request("ACK", id=task_id, result=result)["outcome"]

    def fail(self, task_id, **fields):
        return self.request("FAIL", id=task_id, **fields)


class Redis:
    """A real redis-server on a free port in a temporary directory."""

    def __init__(self, appendfsync="always"):
        self.dir = tempfile.mkdtemp(prefix="trident-redis-")
        self.port = None
        self.proc = None
        self.appendfsync = appendfsync
        self.start()

    def start(self):
        """Starts it (again: same port and directory, so its AOF is loaded)."""
        fixed = self.port is not None
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
            if not fixed:
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
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


class Broker:
    """A real tridentd; embedded Redis unless redis_url is given."""

    def __init__(self, redis_url=None, args=(), env=None, port=None, data_dir=None,
                 password=None):
        self._password = password  # for the readiness check, when set by a file
        self.dir = tempfile.mkdtemp(prefix="trident-broker-")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.redis_url = redis_url
        self.args = list(args)
        self.env = env
        self.log = os.path.join(self.dir, "tridentd.log")
        self.proc = None
        self.returncode = None
        self.signalled = False  # a SIGTERM or SIGINT was sent: it is draining
        self._ctl = None
        self.start()

    def start(self):
        """Starts it (again: same port and data directory)."""
        for attempt in range(5):
            cmd = [binary("server/tridentd"), "--listen", f"127.0.0.1:{self.port}",
                   "--data-dir", self.data_dir, "-vv", *self.args]
            if self.redis_url:
                cmd += ["--redis", self.redis_url]
            env = dict(os.environ)
            env.update(self.env or {})
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             env=env)
            self.returncode = None
            self.signalled = False
            try:
                wait_for(self._ready, 20, "tridentd to accept and reach Redis")
                return
            except RuntimeError:
                # Another test took the free port between our look and its bind.
                if self.fixed_port or attempt == 4 or "in use" not in self.log_text():
                    raise
                self.port = free_port()

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"tridentd exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            c = Client(self.port, timeout=5)
        except OSError:
            return False
        try:
            hello = {"version": 1, "role": "client"}
            if self.password():
                hello["password"] = self.password()
            c.request("HELLO", **hello)
            c.request("PING")
            c.request("STATS")  # needs Redis
            return True
        except (ProtocolError, ConnectionError, OSError):
            return False
        finally:
            c.close()

    def password(self):
        return self._password or (self.env or {}).get("TRIDENT_PASSWORD")

    def client(self, **hello):
        """A connection; with keyword arguments, a HELLO with them (version 1)
        and the broker's password if it has one."""
        if hello and self.password():
            hello.setdefault("password", self.password())
        return Client(self.port, hello=hello or None)

    def admin(self):
        return self.client(role="admin", client="tridentlib-admin")

    def worker(self, **kw):
        if self.password():
            kw.setdefault("password", self.password())
        return Worker(self.port, **kw)

    def ctl(self):
        """A lasting admin connection for checks (STATS, INFO, GET...)."""
        if self._ctl is None or self._ctl.closed:
            self._ctl = self.admin()
        return self._ctl

    def stats(self, queue=None):
        fields = {"queue": queue} if queue else {}
        return self.ctl().request("STATS", **fields)["stats"]

    def queue_stats(self, queue):
        for q in self.stats(queue)["queues"]:
            if q["name"] == queue:
                return q
        raise AssertionError(f"no queue {queue} in STATS")

    def counters(self):
        return self.stats()["counters"]

    def errors(self):
        return self.stats()["errors"]

    def info(self):
        return self.ctl().request("INFO")["info"]

    def get(self, task_id):
        return self.ctl().request("GET", id=task_id)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=80):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self):
        """SIGKILL; returns once tridentd and its embedded redis-server are
        gone. That Redis gets SIGTERM from the kernel (PDEATHSIG) and saves
        before it exits: a stop() that removed its directory meanwhile would
        make that save fail, and Redis then refuses to exit at all."""
        redis = None if self.redis_url or self.proc.poll() is not None else self.redis_pid()
        self.proc.kill()
        self.proc.wait()
        self.returncode = self.proc.returncode
        if self._ctl:
            self._ctl.close()
        self._ctl = None
        if redis:
            wait_for(lambda: proc_gone(redis), 30, f"the embedded redis-server (pid {redis}) "
                     "to exit after tridentd")

    def redis_pid(self):
        """The pid of the embedded redis-server (a child of tridentd), or
        None while there is none (it died and its restart is pending)."""
        kids = [p for p in proc_children(self.proc.pid)
                if proc_name(p) == "redis-server" and not proc_gone(p)]
        if len(kids) > 1:
            raise AssertionError(f"tridentd has {len(kids)} redis-server children: {kids}")
        return kids[0] if kids else None

    def signal(self, sig):
        """Sends sig; after SIGTERM or SIGINT, stop() waits instead of
        signalling again."""
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.signalled = True
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        """Waits for the process to exit; returns its exit status."""
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def terminate(self, timeout=30):
        if not self.signalled:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def sanitizer_report(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            at = text.find(mark)
            if at >= 0:
                return text[max(0, at - 200):at + 3000]
        return None

    def check_clean(self):
        """Fails unless the broker exited 0 with no sanitizer report."""
        report = self.sanitizer_report()
        if report:
            raise AssertionError(f"tridentd sanitizer report (log {self.log}):\n{report}")
        if self.returncode not in (0, -signal.SIGKILL):
            raise AssertionError(f"tridentd exited with {self.returncode} (log {self.log}):\n"
                                 f"{self.log_tail()}")

    def stop(self):
        """SIGTERM if running; checks a clean exit; removes the directory."""
        try:
            if self.proc and self.proc.poll() is None:
                try:
                    self.terminate()
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise AssertionError(f"tridentd did not exit within 30 s of SIGTERM:\n"
                                         f"{self.log_tail()}")
            elif self.proc:
                self.returncode = self.proc.returncode
            self.check_clean()
        finally:
            if self._ctl:
                self._ctl.close()
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)


class WorkerProcess:
    """A real trident-worker (its pre-fork master) against broker, with its
    log and scratch root in a temporary directory; stopped by the PID
    started here. args come after the defaults, so they may override them;
    env is added to the environment."""

    def __init__(self, broker, *args, processes=2, threads=2, queues=("default",), env=None,
                 verbose="-v"):
        self.dir = tempfile.mkdtemp(prefix="trident-worker-")
        self.scratch = os.path.join(self.dir, "scratch")
        os.mkdir(self.scratch)
        self.log = os.path.join(self.dir, "worker.log")
        self.processes = processes
        cmd = [binary("worker/trident-worker"), "--broker", f"127.0.0.1:{broker.port}",
               "--processes", str(processes), "--threads", str(threads),
               "--queues", ",".join(queues), "--scratch-root", self.scratch, verbose, *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=full_env)
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def children(self):
        """The pids of the master's children (the worker processes)."""
        return proc_children(self.proc.pid)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=80):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_report(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            at = text.find(mark)
            if at >= 0:
                return text[max(0, at - 200):at + 3000]
        return None

    def kill(self):
        """SIGKILL to the master (its children then stop on their own)."""
        self.proc.kill()
        self.returncode = self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM if running; fails unless it exited 0 with no sanitizer
        report (from the master or any child); removes the directory."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.returncode = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise AssertionError(f"trident-worker did not exit within {timeout} s of "
                                         f"SIGTERM:\n{self.log_tail()}")
            else:
                self.returncode = self.proc.returncode
            report = self.sanitizer_report()
            if report:
                raise AssertionError(f"trident-worker sanitizer report (log {self.log}):\n"
                                     f"{report}")
            if self.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"trident-worker exited with {self.returncode} (log "
                                     f"{self.log}):\n{self.log_tail()}")
        finally:
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)


class BrokerTest(unittest.TestCase):
    """Starts processes with cleanups. A broker's exit is checked (0, no
    sanitizer report) when the test ends; if the test failed, the tail of
    each broker's log is printed."""

    maxDiff = None

    def start_redis(self, **kw):
        r = Redis(**kw)
        self.addCleanup(r.stop)
        return r

    def start_broker(self, *args, **kw):
        b = Broker(args=args, **kw)
        self.addCleanup(self._stop_broker, b)
        return b

    def _failed(self):
        """True if this test (or one of its subtests) has failed so far."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        for test, _ in list(result.failures) + list(result.errors):
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def _stop_broker(self, b):
        if self._failed() or KEEP:
            sys.stderr.write(f"\n--- tridentd log {b.log} (last lines) ---\n{b.log_tail()}\n---\n")
        b.stop()

    def start_worker_process(self, broker, *args, **kw):
        """A real trident-worker (WorkerProcess) against broker, stopped and
        checked when the test ends, before the broker (cleanups run last
        first)."""
        w = WorkerProcess(broker, *args, **kw)
        self.addCleanup(self._stop_worker_process, w)
        return w

    def _stop_worker_process(self, w):
        if self._failed() or KEEP:
            sys.stderr.write(f"\n--- trident-worker log {w.log} (last lines) ---\n"
                             f"{w.log_tail()}\n---\n")
        w.stop()

    def track(self, conn):
        """Closes conn when the test ends."""
        self.addCleanup(conn.close)
        return conn

    def assertClosedWith(self, conn, code, timeout=5.0):
        """The connection gets an ERROR with code (and no rid) and then EOF."""
        frames = conn.expect_close(timeout)
        errs = [m for m in frames if m.get("op") == "ERROR"]
        self.assertTrue(errs, f"no ERROR before the close; got {frames}")
        self.assertEqual(errs[-1]["code"], code, frames)
        self.assertEqual(frames[-1], errs[-1], "the closing ERROR must be the last frame")
        return errs[-1]
