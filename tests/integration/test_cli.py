"""The trident CLI, and through it libtrident, against a real tridentd
(embedded Redis) and a real trident-worker running its built-in handlers
(echo, sleep, fail, sha256).

Every test runs the built `trident` binary with subprocess and checks its
exit status, stdout and stderr: 0 success, 1 task failed, 2 usage,
3 timeout, 4 broker error, 5 connection error. Waits poll with deadlines.
Under TRIDENT_ASAN the CLI runs with leak detection on, so a leak or a
sanitizer report fails the command that caused it."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import tridentlib as t  # noqa: E402

# The queues the worker serves; each test that counts tasks has its own.
QUEUES = ["default", "cli_stats", "cli_pause", "cli_dead", "cli_cancel", "cli_batch"]


class WorkerProcess:
    """A real trident-worker, stopped by the PID started here."""

    def __init__(self, broker):
        self.dir = tempfile.mkdtemp(prefix="trident-cli-worker-")
        scratch = os.path.join(self.dir, "scratch")
        os.mkdir(scratch)
        self.log = os.path.join(self.dir, "worker.log")
        cmd = [t.binary("worker/trident-worker"), "--broker", f"127.0.0.1:{broker.port}",
               "--processes", "1", "--threads", "4", "--queues", ",".join(QUEUES),
               "--scratch-root", scratch, "-v"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not t.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


class CliTest(unittest.TestCase):
    """One broker and one worker for the whole class; tests keep apart by
    using their own queues and task ids."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.broker = t.Broker(args=["--retry-base", "20ms", "--retry-cap", "100ms"])
        cls.worker = WorkerProcess(cls.broker)
        try:
            t.wait_for(lambda: cls.broker.stats()["workers"], 30, "trident-worker to connect")
        except Exception:
            cls.worker.stop()
            cls.broker.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        cls.broker.stop()

    # -- running the CLI --------------------------------------------------

    def run_cli(self, *args, input=None, env=None, broker=True, timeout=60):
        """Runs trident with args (after --broker unless broker is False);
        returns the CompletedProcess (stdout and stderr as bytes)."""
        cmd = [t.binary("client/trident")]
        if broker:
            cmd += ["--broker", f"127.0.0.1:{self.broker.port}"]
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("TRIDENT_BROKER", "TRIDENT_PASSWORD", "TRIDENT_PASSWORD_FILE")}
        full_env.update(env or {})
        p = subprocess.run(cmd + list(args), input=input, capture_output=True, timeout=timeout,
                           env=full_env, stdin=None if input is not None else subprocess.DEVNULL)
        err = p.stderr.decode(errors="replace")
        for mark in t.SANITIZER_MARKS:
            self.assertNotIn(mark, err, f"trident {' '.join(args)}:\n{err}")
        return p

    def ok(self, *args, **kw):
        """Runs trident; asserts exit 0; returns stdout as text."""
        p = self.run_cli(*args, **kw)
        self.assertEqual(p.returncode, 0, f"trident {' '.join(args)} exited {p.returncode}:\n"
                                          f"{p.stderr.decode(errors='replace')}")
        return p.stdout.decode()

    def ok_json(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw))

    def fails(self, code, *args, **kw):
        """Runs trident; asserts exit status code; returns stderr as text."""
        p = self.run_cli(*args, **kw)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, code, f"trident {' '.join(args)}: stdout "
                                             f"{p.stdout!r}, stderr:\n{err}")
        return err

    def get_json(self, task_id, wait="10"):
        """The task as `get --json --wait`, whatever the exit status."""
        p = self.run_cli("--json", "get", task_id, "--wait", wait)
        self.assertIn(p.returncode, (0, 1, 3), p.stderr)
        return json.loads(p.stdout)

    def queue_stats(self, queue):
        for q in self.ok_json("queues"):
            if q["name"] == queue:
                return q
        return None

    # -- the tests --------------------------------------------------------

    def test_run_echo_prints_hello(self):
        p = self.run_cli("run", "echo", "hello")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"hello")
        self.assertEqual(p.stderr, b"")

    def test_run_json(self):
        task = self.ok_json("run", "sha256", "abc")
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(task["name"], "sha256")
        self.assertEqual(task["attempt"], 1)
        self.assertEqual(base64.b64decode(task["result"]),
                         b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

    def test_ping(self):
        out = self.ok("ping")
        self.assertIn("PONG", out)
        self.assertIn("tridentd", out)
        pong = self.ok_json("ping")
        self.assertLess(abs(pong["time"] - t.now_ms()), 60000)
        self.assertIn("tridentd", pong["server"])

    def test_submit_then_get_wait(self):
        task_id = self.ok("submit", "echo", "payload-1").strip()
        self.assertRegex(task_id, r"^[0-9A-Z]{26}$")
        out = self.ok("get", task_id, "--wait", "10")
        self.assertRegex(out, r"state\s+succeeded")
        self.assertRegex(out, r"result\s+payload-1")
        task = self.ok_json("get", task_id)
        self.assertEqual(task["id"], task_id)
        self.assertEqual(task["queue"], "default")
        self.assertEqual(base64.b64decode(task["result"]), b"payload-1")
        self.assertGreater(task["finished_at"], 0)

    def test_submit_json_and_duplicate(self):
        first = self.ok_json("submit", "echo", "once", "--id", "cli-dup-1")
        self.assertEqual(first, {"id": "cli-dup-1", "duplicate": False})
        again = self.ok_json("submit", "echo", "twice", "--id", "cli-dup-1")
        self.assertEqual(again, {"id": "cli-dup-1", "duplicate": True})
        task = self.get_json("cli-dup-1")
        self.assertEqual(base64.b64decode(task["result"]), b"once")

    def test_run_of_fail_exits_1_with_the_error(self):
        p = self.run_cli("run", "fail", "it broke", "--max-retries", "0")
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(p.stdout, b"")
        self.assertIn("TASK_FAILED", err)
        self.assertIn("it broke", err)
        self.assertIn("dead", err)

    def test_run_timeout_exits_3(self):
        start = time.monotonic()
        err = self.fails(3, "--timeout", "1", "run", "sleep", "5000")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 4.5, "the timeout was not kept")
        m = re.search(r"task (\S+) goes on", err)
        self.assertTrue(m, err)
        # The task itself goes on: it is there to read and to cancel.
        task = self.ok_json("get", m.group(1))
        self.assertIn(task["state"], ("queued", "running"))
        self.ok("cancel", m.group(1))

    def test_get_wait_that_runs_out_exits_3(self):
        task_id = self.ok("submit", "sleep", "3000").strip()
        err = self.fails(3, "get", task_id, "--wait", "200ms")
        self.assertEqual(err, "")
        self.ok("cancel", task_id)

    def test_stats_table_and_json(self):
        self.ok("run", "echo", "s", "--queue", "cli_stats")
        out = self.ok("stats")
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["QUEUE", "READY", "SCHEDULED", "RUNNING", "RETRYING",
                                            "DEAD", "SUCCEEDED", "FAILED", "CANCELLED",
                                            "PAUSED"])
        row = [ln.split() for ln in lines if ln.startswith("cli_stats ")]
        self.assertEqual(len(row), 1, out)
        self.assertEqual(row[0][0], "cli_stats")
        self.assertGreaterEqual(int(row[0][6]), 1)  # succeeded
        self.assertEqual(row[0][9], "no")
        self.assertTrue(any(ln.split()[:3] == ["WORKER", "HOST", "PID"] for ln in lines), out)

        stats = self.ok_json("stats")
        self.assertIn("cli_stats", [q["name"] for q in stats["queues"]])
        self.assertGreaterEqual(len(stats["workers"]), 1)
        self.assertIn("submitted", stats["counters"])
        self.assertIsInstance(stats["errors"], dict)

        one = self.ok_json("stats", "cli_stats")
        self.assertEqual([q["name"] for q in one["queues"]], ["cli_stats"])

        self.assertGreaterEqual(self.queue_stats("cli_stats")["succeeded"], 1)
        workers = self.ok_json("workers")
        self.assertIn("cli_stats", workers[0]["queues"])
        self.assertGreaterEqual(workers[0]["capacity"], 1)
        self.assertIn("WORKER", self.ok("workers"))
        self.assertIn("cli_stats", self.ok("queues"))

    def test_info(self):
        info = json.loads(self.ok("info"))  # readable: indented JSON
        self.assertEqual(info["redis"]["mode"], "embedded")
        self.assertIn("max_payload", info["limits"])
        self.assertEqual(self.ok_json("info")["version"], info["version"])

    def test_pause_resume_purge(self):
        q = "cli_pause"
        self.assertEqual(self.ok_json("pause", q), {"queue": q, "paused": True})
        ids = [self.ok("submit", "echo", f"p{i}", "--queue", q).strip() for i in range(3)]
        stats = self.queue_stats(q)
        self.assertTrue(stats["paused"])
        self.assertEqual(stats["ready"], 3)
        self.assertEqual(self.get_json(ids[0], wait="0")["state"], "queued")
        # Purge deletes only waiting tasks: all three are still waiting.
        self.assertEqual(self.ok_json("purge", q), {"queue": q, "count": 3})
        err = self.fails(4, "get", ids[0])
        self.assertIn("NOT_FOUND", err)
        self.assertIn("purged 0", self.ok("purge", q))
        self.assertIn("resumed", self.ok("resume", q))
        self.assertFalse(self.queue_stats(q)["paused"])
        self.assertEqual(self.ok("run", "echo", "after", "--queue", q), "after")

    def test_dead_list_retry_purge(self):
        q = "cli_dead"
        self.fails(1, "run", "fail", "first", "--queue", q, "--max-retries", "0", "--id",
                   "cli-dead-1")
        self.fails(1, "run", "fail", "second", "--queue", q, "--max-retries", "0", "--id",
                   "cli-dead-2")
        self.assertEqual(self.get_json("cli-dead-1")["state"], "dead")

        out = self.ok("dead", "list", q)
        self.assertEqual(out.splitlines()[0].split(), ["ID", "NAME", "ATTEMPTS", "DIED", "ERROR"])
        self.assertRegex(out, r"cli-dead-1\s+fail\s+1\s+\S+\s+TASK_FAILED: first")
        self.assertIn("cli-dead-2", out)
        self.assertIn("2 of 2 dead tasks", out)

        listed = self.ok_json("dead", "list", q)
        self.assertEqual(listed["total"], 2)
        self.assertEqual([x["id"] for x in listed["tasks"]], ["cli-dead-1", "cli-dead-2"])
        self.assertEqual(listed["tasks"][0]["error"], "first")
        self.assertEqual(listed["tasks"][0]["error_code"], "TASK_FAILED")
        page = self.ok_json("dead", "list", q, "--offset", "1", "--limit", "1")
        self.assertEqual([x["id"] for x in page["tasks"]], ["cli-dead-2"])
        self.assertEqual(page["total"], 2)

        # Retry one: it runs again (and fails again, as fail does).
        self.assertEqual(self.ok_json("dead", "retry", q, "cli-dead-1"), {"queue": q, "count": 1})
        died_before = listed["tasks"][0]["finished_at"]
        t.wait_for(lambda: self.get_json("cli-dead-1")["finished_at"] > died_before, 10,
                   "the retried task to die again")
        self.assertIn("requeued 0", self.ok("dead", "retry", q, "no-such-task"))

        # Purge them all.
        self.assertEqual(self.ok_json("dead", "purge", q), {"queue": q, "count": 2})
        self.assertIn("NOT_FOUND", self.fails(4, "get", "cli-dead-2"))
        self.assertEqual(self.ok_json("dead", "list", q), {"tasks": [], "total": 0})
        self.assertIn("expected list, retry or purge", self.fails(2, "dead", "bury", q))

    def test_cancel(self):
        q = "cli_cancel"
        # A queued task: its queue is paused, so it cannot have started.
        self.ok("pause", q)
        try:
            queued = self.ok("submit", "sleep", "10000", "--queue", q).strip()
            self.assertIn("before it ran", self.ok("cancel", queued))
        finally:
            self.ok("resume", q)
        self.assertEqual(self.get_json(queued)["state"], "cancelled")
        self.fails(1, "get", queued)

        # A running one.
        running = self.ok("submit", "sleep", "10000", "--queue", q).strip()
        t.wait_for(lambda: self.get_json(running, wait="0")["state"] == "running", 10,
                   "the sleep task to start")
        self.assertEqual(self.ok_json("cancel", running), {"id": running, "outcome": "running"})
        task = self.get_json(running)
        self.assertEqual(task["state"], "cancelled")
        self.assertEqual(task["error_code"], "CANCELLED")
        self.assertIn("already ended", self.ok("cancel", running))
        self.assertIn("NOT_FOUND", self.fails(4, "cancel", "no-such-task"))

    def test_bad_broker_address_exits_5(self):
        port = t.free_port()  # nothing listens there
        err = self.fails(5, "-b", f"127.0.0.1:{port}", "ping", broker=False)
        self.assertIn(f"cannot connect to the broker at 127.0.0.1:{port}", err)
        self.assertIn("Connection refused", err)
        err = self.fails(5, "--broker", "localhost:99999", "ping", broker=False)
        self.assertIn("bad port '99999'", err)
        err = self.fails(5, "ping", broker=False,
                         env={"TRIDENT_BROKER": "unix:/nonexistent/trident.sock"})
        self.assertIn("unix:/nonexistent/trident.sock", err)

    def test_usage_errors_exit_2(self):
        self.assertIn("unknown command 'frobnicate'", self.fails(2, "frobnicate"))
        self.assertIn("no command given", self.fails(2))
        self.assertIn("usage: trident submit NAME", self.fails(2, "submit"))
        self.assertIn("--wait: unknown option", self.fails(2, "submit", "echo", "--wait", "1"))
        self.assertIn("--priority", self.fails(2, "submit", "echo", "--priority", "5000"))
        self.assertIn("--run-at", self.fails(2, "submit", "echo", "--run-at", "soon"))
        self.assertIn("not both", self.fails(2, "run", "echo", "x", "--file", "/dev/null"))
        self.assertIn("/nonexistent", self.fails(2, "run", "echo", "--file", "/nonexistent"))
        self.assertIn("wrong number of arguments", self.fails(2, "get"))
        # --help documents every exit status.
        out = self.ok("--help")
        for code in range(6):
            self.assertRegex(out, rf"\n  {code}  ")
        self.assertIn("trident", self.ok("--version"))

    def test_broker_errors_exit_4(self):
        err = self.fails(4, "submit", "echo", "x", "--queue", "bad{queue}")
        self.assertIn("BAD_REQUEST", err)
        self.assertIn("queue", err)
        self.assertIn("NOT_FOUND", self.fails(4, "get", "no-such-task"))

    def test_payload_from_file_and_stdin(self):
        data = b"\x00\x01 binary \xff\xfe\n"
        with tempfile.NamedTemporaryFile(prefix="trident-cli-", delete=False) as f:
            f.write(data)
        self.addCleanup(os.unlink, f.name)
        p = self.run_cli("run", "echo", "--file", f.name)
        self.assertEqual((p.returncode, p.stdout), (0, data), p.stderr)

        p = self.run_cli("run", "echo", "-", input=b"from stdin\n")
        self.assertEqual((p.returncode, p.stdout), (0, b"from stdin\n"), p.stderr)

        task_id = self.ok("submit", "echo", "-", "--id", "cli-stdin-1", input=data).strip()
        self.assertEqual(task_id, "cli-stdin-1")
        self.assertEqual(base64.b64decode(self.get_json(task_id)["result"]), data)
        # A payload that looks like an option, after --.
        self.assertEqual(self.ok("run", "echo", "--", "--not-an-option"), "--not-an-option")

    def test_submit_batch(self):
        lines = [b"line one", b"", b"line three", b"\xc3\xa9t\xc3\xa9"]
        with tempfile.NamedTemporaryFile(prefix="trident-cli-", delete=False) as f:
            f.write(b"\n".join(lines))  # the last line has no newline
        self.addCleanup(os.unlink, f.name)
        ids = self.ok("-q", "cli_batch", "submit-batch", "echo", f.name).split()
        self.assertEqual(len(ids), 4)
        self.assertEqual(len(set(ids)), 4)
        for task_id, line in zip(ids, lines):
            task = self.get_json(task_id)
            self.assertEqual(task["state"], "succeeded")
            self.assertEqual(task["queue"], "cli_batch")
            self.assertEqual(base64.b64decode(task.get("result", "")), line)

        got = self.ok_json("submit-batch", "echo", "-", input=b"a\nb\nc\n")
        self.assertEqual(len(got["ids"]), 3)
        self.assertEqual(got["duplicates"], [])
        self.assertEqual(base64.b64decode(self.get_json(got["ids"][2])["result"]), b"c")
        self.assertIn("holds no lines", self.fails(2, "submit-batch", "echo", "-", input=b""))

    def test_password_env_and_unix_socket(self):
        tmp = tempfile.mkdtemp(prefix="trident-cli-pw-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pw_file = os.path.join(tmp, "pw")
        with open(pw_file, "w") as f:
            f.write("s3cret\n")
        sock = os.path.join(tmp, "broker.sock")
        b = t.Broker(args=["--password-file", pw_file, "--listen", f"unix:{sock}"],
                     password="s3cret")
        self.addCleanup(b.stop)
        tcp = f"127.0.0.1:{b.port}"
        err = self.fails(4, "--broker", tcp, "ping", broker=False)
        self.assertIn("AUTH_REQUIRED", err)
        self.ok("--broker", tcp, "--password-file", pw_file, "ping", broker=False)
        self.ok("ping", broker=False, env={"TRIDENT_BROKER": tcp, "TRIDENT_PASSWORD": "s3cret"})
        self.ok("ping", broker=False,
                env={"TRIDENT_BROKER": f"unix:{sock}", "TRIDENT_PASSWORD_FILE": pw_file})
        err = self.fails(4, "ping", broker=False,
                         env={"TRIDENT_BROKER": tcp, "TRIDENT_PASSWORD": "wrong"})
        self.assertIn("AUTH_FAILED", err)
        # Admin commands connect as role admin, with the password too.
        self.ok("--broker", tcp, "--password-file", pw_file, "pause", "q", broker=False)

    def test_connection_lost_exits_5(self):
        # A broker that accepts and closes at once.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        proc = subprocess.Popen([t.binary("client/trident"), "--broker", f"127.0.0.1:{port}",
                                 "ping"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        conn, _ = listener.accept()
        conn.settimeout(30)
        conn.recv(4096)  # its HELLO; then the connection closes without a reply
        conn.close()
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 5, err)
        self.assertIn(b"closed the connection", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
