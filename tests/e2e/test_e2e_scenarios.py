#!/usr/bin/python3
"""End-to-end scenarios: the whole stack from the built binaries.

tridentd runs with its embedded Redis (no --redis: it spawns redis-server
itself in its data directory), trident-worker is the real pre-fork worker
running its built-in handlers, and every request is made with the `trident`
CLI, checking its exit status (as `trident --help` documents it), its
stdout and its stderr. Where the CLI cannot say something (a broker limit
the CLI checks before sending), the protocol client of tridentlib asks the
broker directly.

One broker and one worker serve the whole ScenarioTest class; each test
keeps to its own queues and task ids. BigPayloadTest has its own broker
with raised limits. Waits poll a condition with a deadline.

    TRIDENT_BUILD=build /usr/bin/python3 test_e2e_scenarios.py [-k pattern]
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import tridentlib as t  # noqa: E402

# The exit statuses of `trident --help`, and a phrase of each one's line.
EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_BROKER, EXIT_CONNECTION = range(6)
EXIT_DOCS = {EXIT_OK: "success", EXIT_TASK_FAILED: "the task failed",
             EXIT_USAGE: "usage error", EXIT_TIMEOUT: "timeout",
             EXIT_BROKER: "the broker refused the request",
             EXIT_CONNECTION: "connection error"}

# The class worker's queues. Queues used with a worker of their own, or with
# none, are not here: e2e_prio, e2e_revive, e2e_full.
QUEUES = ["e2e_hello", "e2e_delay", "e2e_dead", "e2e_cancel", "e2e_pause", "e2e_other",
          "e2e_payload"]

MAX_PAYLOAD = 1 << 20  # the ScenarioTest broker's --max-payload
QUEUE_LIMIT = 3        # the ScenarioTest broker's limit for e2e_full


class Cli:
    """Runs the `trident` binary against one broker."""

    def __init__(self, test, broker):
        self.test = test
        self.broker = broker

    def run(self, *args, input=None, stdout=subprocess.PIPE, timeout=120):
        """trident --broker ADDR args...; the CompletedProcess (bytes).
        Fails on a sanitizer report on its stderr."""
        cmd = [t.binary("client/trident"), "--broker", f"127.0.0.1:{self.broker.port}", *args]
        env = {k: v for k, v in os.environ.items()
               if k not in ("TRIDENT_BROKER", "TRIDENT_PASSWORD", "TRIDENT_PASSWORD_FILE")}
        p = subprocess.run(cmd, input=input, stdout=stdout, stderr=subprocess.PIPE,
                           timeout=timeout, env=env,
                           stdin=None if input is not None else subprocess.DEVNULL)
        err = p.stderr.decode(errors="replace")
        for mark in t.SANITIZER_MARKS:
            self.test.assertNotIn(mark, err, f"trident {' '.join(args)}:\n{err}")
        return p

    def status(self, code, *args, **kw):
        """Runs trident; asserts its exit status; returns the process."""
        p = self.run(*args, **kw)
        self.test.assertEqual(p.returncode, code,
                              f"trident {' '.join(args)}: stdout {p.stdout!r}, stderr:\n"
                              f"{p.stderr.decode(errors='replace')}")
        return p

    def ok(self, *args, **kw):
        """Runs trident; asserts exit 0; returns stdout as text."""
        return self.status(EXIT_OK, *args, **kw).stdout.decode()

    def json(self, *args, code=EXIT_OK, **kw):
        """Runs trident --json; asserts the exit status; returns the JSON."""
        return json.loads(self.status(code, "--json", *args, **kw).stdout)

    def refused(self, *args, **kw):
        """Runs trident; asserts exit 4 (broker error) with nothing on
        stdout; returns stderr as text."""
        p = self.status(EXIT_BROKER, *args, **kw)
        self.test.assertEqual(p.stdout, b"", "a refused request printed a result")
        return p.stderr.decode(errors="replace")

    def task(self, task_id):
        """The task as `get --json` (exit 0 or 1: it may have failed)."""
        p = self.run("--json", "get", task_id)
        self.test.assertIn(p.returncode, (EXIT_OK, EXIT_TASK_FAILED), p.stderr)
        return json.loads(p.stdout)

    def wait_final(self, task_id, seconds=20):
        """The task once it is final, as `get --json --wait`."""
        p = self.run("--json", "get", task_id, "--wait", f"{seconds}s")
        self.test.assertIn(p.returncode, (EXIT_OK, EXIT_TASK_FAILED),
                           f"{task_id} not final within {seconds} s: {p.stdout!r} {p.stderr!r}")
        return json.loads(p.stdout)

    def queue(self, name):
        """The queue's line of `queues --json`, or None."""
        for q in self.json("queues"):
            if q["name"] == name:
                return q
        return None

    def idle(self, queue):
        """True when every worker process serving queue runs nothing and has
        all its slots free: its credits are back at its capacity."""
        ws = [w for w in self.json("workers") if queue in w["queues"]]
        self.test.assertTrue(ws, f"no worker serves {queue}")
        return all(w["running"] == 0 and w["credits"] == w["capacity"] for w in ws)


class E2ETest(t.BrokerTest):
    """A class broker and worker (class attributes broker, worker), shown in
    the output when a test fails."""

    broker_args = ()
    worker_queues = QUEUES
    worker_args = ()

    @classmethod
    def setUpClass(cls):
        cls.broker = t.Broker(args=list(cls.broker_args))
        try:
            cls.worker = t.WorkerProcess(cls.broker, *cls.worker_args, processes=2, threads=4,
                                         queues=cls.worker_queues)
            t.wait_for(lambda: len(cls.broker.stats()["workers"]) == 2, 30,
                       "trident-worker's two processes to connect")
        except BaseException:
            if getattr(cls, "worker", None):
                cls.worker.stop()
            cls.broker.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.worker.stop()
        finally:
            cls.broker.stop()

    def setUp(self):
        self.cli = Cli(self, self.broker)
        self.addCleanup(self._dump_class_logs)

    def _dump_class_logs(self):
        if self._failed() or t.KEEP:
            sys.stderr.write(f"\n--- tridentd log {self.broker.log} (last lines) ---\n"
                             f"{self.broker.log_tail()}\n--- trident-worker log "
                             f"{self.worker.log} (last lines) ---\n{self.worker.log_tail()}\n---\n")

    def tmpfile(self, data):
        """A temporary file holding data; removed when the test ends."""
        fd, path = tempfile.mkstemp(prefix="trident-e2e-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        return path


class ScenarioTest(E2ETest):
    broker_args = ("--retry-base", "20ms", "--retry-cap", "100ms",
                   "--queue-limit", f"e2e_full:{QUEUE_LIMIT}",
                   "--max-payload", str(MAX_PAYLOAD), "--max-frame", str(2 * MAX_PAYLOAD))

    def test_exit_statuses_are_documented(self):
        out = self.cli.ok("--help")
        section = out[out.index("Exit status:"):]
        documented = {int(m.group(1)): m.group(2)
                      for m in re.finditer(r"^  (\d)  (.*)$", section, re.M)}
        self.assertEqual(sorted(documented), sorted(EXIT_DOCS))
        for code, phrase in EXIT_DOCS.items():
            self.assertIn(phrase, documented[code], f"exit status {code}")

    def test_hello(self):
        p = self.cli.run("run", "echo", "hello", "--queue", "e2e_hello")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (EXIT_OK, b"hello", b""))
        # The embedded Redis is the one in use, started by tridentd itself.
        info = self.cli.json("info")
        self.assertEqual(info["redis"]["mode"], "embedded")
        self.assertTrue(info["redis"]["connected"])
        self.assertIsNotNone(self.broker.redis_pid(), "no redis-server child of tridentd")

    def test_priorities(self):
        # One worker with one slot, so the tasks run one at a time, in the
        # order the broker hands them out; each sleeps 30 ms, so their
        # start times differ.
        q = "e2e_prio"
        self.cli.ok("pause", q)
        self.start_worker_process(self.broker, processes=1, threads=1, queues=[q])
        t.wait_for(lambda: any(q in w["queues"] for w in self.cli.json("workers")), 30,
                   "the one-slot worker to connect")
        order = [("low0", -5), ("high0", 10), ("low1", -5), ("mid0", 0), ("high1", 10),
                 ("low2", -5)]
        for name, prio in order:
            self.assertEqual(self.cli.ok("submit", "sleep", "30", "--queue", q, "--id",
                                         f"e2e-prio-{name}", "--priority", str(prio)).strip(),
                             f"e2e-prio-{name}")
        self.assertEqual(self.cli.queue(q)["ready"], len(order))
        self.cli.ok("resume", q)
        for name, _ in order:
            self.cli.wait_final(f"e2e-prio-{name}")
        tasks = [self.cli.task(f"e2e-prio-{name}") for name, _ in order]
        self.assertEqual([x["state"] for x in tasks], ["succeeded"] * len(order))
        ran = [x["id"] for x in sorted(tasks, key=lambda x: x["started_at"])]
        self.assertEqual(ran, ["e2e-prio-high0", "e2e-prio-high1", "e2e-prio-mid0",
                               "e2e-prio-low0", "e2e-prio-low1", "e2e-prio-low2"])
        starts = sorted(x["started_at"] for x in tasks)
        self.assertEqual(len(set(starts)), len(starts), "two tasks started together")
        for x in tasks:  # one at a time: each ends before the next starts
            later = [y for y in tasks if y["started_at"] > x["started_at"]]
            for y in later:
                self.assertLessEqual(x["finished_at"], y["started_at"])

    def test_delay(self):
        delay = 1500
        task_id = self.cli.ok("submit", "echo", "later", "--queue", "e2e_delay",
                              "--delay", f"{delay}ms").strip()
        task = self.cli.task(task_id)
        self.assertEqual(task["state"], "scheduled")
        self.assertEqual(task["run_at"], task["created_at"] + delay)
        done = self.cli.wait_final(task_id)
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(base64.b64decode(done["result"]), b"later")
        self.assertGreaterEqual(done["started_at"], task["created_at"] + delay,
                                "the task ran before its delay")
        self.assertLess(done["started_at"], task["created_at"] + delay + 10000,
                        "the task ran long after its delay")

    # PROTOCOL.md: GET has `finished_at` "when final" and a RESULT push has
    # it "always", also when the broker answers from the ack script's view.
    def test_a_result_says_when_the_task_finished(self):
        q = "e2e_delay"
        ran = self.cli.json("run", "sleep", "50", "--queue", q)
        self.assertEqual(ran["state"], "succeeded")
        self.assertEqual(ran.get("finished_at"), self.cli.task(ran["id"])["finished_at"])
        task_id = self.cli.ok("submit", "sleep", "200", "--queue", q).strip()
        waited = self.cli.wait_final(task_id)
        self.assertEqual(waited["state"], "succeeded")
        self.assertEqual(waited.get("finished_at"), self.cli.task(task_id)["finished_at"])

    def test_retries_into_the_dead_set_retry_and_purge(self):
        q, retries = "e2e_dead", 2
        p = self.cli.status(EXIT_TASK_FAILED, "run", "fail", "boom", "--queue", q, "--id",
                            "e2e-dead-1", "--max-retries", str(retries))
        self.assertEqual(p.stdout, b"")
        err = p.stderr.decode()
        self.assertIn(f"ended dead after {retries + 1} attempts", err)
        self.assertIn("TASK_FAILED: boom", err)
        task = self.cli.task("e2e-dead-1")
        self.assertEqual((task["state"], task["attempt"], task["error_code"], task["error"]),
                         ("dead", retries + 1, "TASK_FAILED", "boom"))

        listed = self.cli.json("dead", "list", q)
        self.assertEqual(listed["total"], 1)
        self.assertEqual([(x["id"], x["attempt"]) for x in listed["tasks"]],
                         [("e2e-dead-1", retries + 1)])
        self.assertRegex(self.cli.ok("dead", "list", q),
                         rf"e2e-dead-1\s+fail\s+{retries + 1}\s+\S+\s+TASK_FAILED: boom")
        self.assertEqual(self.cli.queue(q)["dead"], 1)

        # Back from the dead: it gets its attempts again, and dies again.
        self.assertEqual(self.cli.json("dead", "retry", q, "e2e-dead-1"),
                         {"queue": q, "count": 1})
        died = task["finished_at"]

        def died_again():
            x = self.cli.task("e2e-dead-1")
            return x if x["state"] == "dead" and x["finished_at"] > died else None
        again = t.wait_for(died_again, 20, "the retried task to die again")
        self.assertEqual(again["attempt"], retries + 1)
        self.assertEqual(self.cli.json("dead", "list", q)["total"], 1)

        self.assertEqual(self.cli.json("dead", "purge", q), {"queue": q, "count": 1})
        self.assertEqual(self.cli.json("dead", "list", q), {"tasks": [], "total": 0})
        self.assertIn("NOT_FOUND", self.cli.refused("get", "e2e-dead-1"))
        self.assertEqual(self.cli.queue(q)["dead"], 0)

    def test_dead_retry_runs_again_and_succeeds(self):
        # A task dies where no worker knows its name (NO_HANDLER, at once);
        # a worker that has the handler (an exec of cat) comes, and a dead
        # retry makes it succeed there.
        q = "e2e_revive"
        first = self.start_worker_process(self.broker, processes=1, threads=1, queues=[q])
        t.wait_for(lambda: any(q in w["queues"] for w in self.cli.json("workers")), 30,
                   "the worker without the handler")
        p = self.cli.status(EXIT_TASK_FAILED, "run", "e2e_cat", "revived", "--queue", q,
                            "--id", "e2e-revive-1")
        self.assertIn("NO_HANDLER", p.stderr.decode())
        self.assertEqual(self.cli.task("e2e-revive-1")["state"], "dead")
        first.stop()
        self.start_worker_process(self.broker, "--exec", "e2e_cat=cat", processes=1, threads=1,
                                  queues=[q])
        t.wait_for(lambda: [w for w in self.cli.json("workers") if q in w["queues"]], 30,
                   "the worker with the handler")
        self.assertEqual(self.cli.json("dead", "retry", q), {"queue": q, "count": 1})
        task = self.cli.wait_final("e2e-revive-1")
        self.assertEqual((task["state"], task["attempt"]), ("succeeded", 1))
        self.assertEqual(base64.b64decode(task["result"]), b"revived")
        self.assertEqual(self.cli.json("dead", "list", q)["total"], 0)

    def test_cancel_queued_running_and_final(self):
        q = "e2e_cancel"
        # Queued: its queue is paused, so it cannot have started.
        self.cli.ok("pause", q)
        try:
            queued = self.cli.ok("submit", "sleep", "10000", "--queue", q).strip()
            self.assertEqual(self.cli.json("cancel", queued), {"id": queued, "outcome": "queued"})
        finally:
            self.cli.ok("resume", q)
        task = self.cli.task(queued)
        self.assertEqual((task["state"], task["attempt"], task["error_code"]),
                         ("cancelled", 0, "CANCELLED"))
        self.cli.status(EXIT_TASK_FAILED, "get", queued)

        # Running: the worker is told, and its sleep stops long before 10 s.
        running = self.cli.ok("submit", "sleep", "10000", "--queue", q).strip()
        t.wait_for(lambda: self.cli.task(running)["state"] == "running", 20,
                   "the sleep task to start")
        self.assertIn("while it ran", self.cli.ok("cancel", running))
        task = self.cli.task(running)
        self.assertEqual((task["state"], task["error_code"]), ("cancelled", "CANCELLED"))
        # Its slot is free again (the worker gave its credit back) long
        # before the sleep would have ended.
        t.wait_for(lambda: self.cli.idle(q), 5, "the worker to stop the cancelled sleep")

        # Final: nothing changes.
        done = self.cli.ok("submit", "echo", "x", "--queue", q).strip()
        self.assertEqual(self.cli.wait_final(done)["state"], "succeeded")
        self.assertEqual(self.cli.json("cancel", done), {"id": done, "outcome": "final"})
        self.assertIn("already ended", self.cli.ok("cancel", done))
        self.assertEqual(self.cli.task(done)["state"], "succeeded")
        self.assertIn("NOT_FOUND", self.cli.refused("cancel", "e2e-no-such-task"))

    def test_pause_and_resume(self):
        q = "e2e_pause"
        self.assertEqual(self.cli.json("pause", q), {"queue": q, "paused": True})
        self.assertTrue(self.cli.queue(q)["paused"])
        held = self.cli.ok("submit", "echo", "held", "--queue", q).strip()
        # The same worker serves e2e_other with free slots: once a task of
        # e2e_other has run there, the paused task was passed over.
        self.assertEqual(self.cli.ok("run", "echo", "other", "--queue", "e2e_other"), "other")
        self.assertEqual(self.cli.task(held)["state"], "queued")
        self.assertEqual(self.cli.queue(q)["ready"], 1)
        self.assertEqual(self.cli.json("resume", q), {"queue": q, "paused": False})
        self.assertFalse(self.cli.queue(q)["paused"])
        task = self.cli.wait_final(held)
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(base64.b64decode(task["result"]), b"held")

    def test_queue_full(self):
        q = "e2e_full"  # no worker serves it: its tasks stay ready
        errors = self.cli.json("stats")["errors"].get("QUEUE_FULL", 0)
        for i in range(QUEUE_LIMIT):
            self.cli.ok("submit", "echo", f"f{i}", "--queue", q)
        err = self.cli.refused("submit", "echo", "one too many", "--queue", q)
        self.assertRegex(err, r"^trident: submit: QUEUE_FULL: .*e2e_full")
        err = self.cli.refused("--json", "submit", "echo", "one too many", "--queue", q)
        self.assertIn("QUEUE_FULL", err)
        err = self.cli.refused("submit-batch", "echo", "-", "--queue", q, input=b"a\n")
        self.assertIn("QUEUE_FULL", err)
        self.assertEqual(self.cli.queue(q)["ready"], QUEUE_LIMIT)
        self.assertEqual(self.cli.json("stats")["errors"].get("QUEUE_FULL", 0), errors + 3)
        # Room again once the queue is emptied.
        self.assertEqual(self.cli.json("purge", q), {"queue": q, "count": QUEUE_LIMIT})
        self.cli.ok("submit", "echo", "fits", "--queue", q)
        self.assertEqual(self.cli.queue(q)["ready"], 1)
        self.cli.json("purge", q)

    def test_payload_too_large(self):
        q = "e2e_payload"
        self.assertEqual(self.cli.json("info")["limits"]["max_payload"], MAX_PAYLOAD)
        errors = self.cli.json("stats")["errors"].get("PAYLOAD_TOO_LARGE", 0)
        exact = os.urandom(MAX_PAYLOAD)
        p = self.cli.run("run", "echo", "--file", self.tmpfile(exact), "--queue", q)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), hashlib.sha256(exact).hexdigest())

        # The CLI refuses one byte more before sending it (it knows the
        # limit from the broker's HELLO reply), with the broker's exit status.
        over = self.tmpfile(exact + b"!")
        err = self.cli.refused("submit", "echo", "--file", over, "--queue", q, "--id",
                               "e2e-too-large")
        self.assertIn(f"limit of {MAX_PAYLOAD} bytes", err)
        self.assertIn("NOT_FOUND", self.cli.refused("get", "e2e-too-large"))
        # The broker refuses it too, from any client.
        c = self.track(self.broker.client(client="e2e"))
        e = c.error("SUBMIT", name="echo", queue=q, id="e2e-too-large", payload=exact + b"!")
        self.assertEqual(e["code"], "PAYLOAD_TOO_LARGE")
        self.assertIn(str(MAX_PAYLOAD), e["message"])
        self.assertIn("NOT_FOUND", self.cli.refused("get", "e2e-too-large"))
        self.assertEqual(self.cli.json("stats")["errors"].get("PAYLOAD_TOO_LARGE", 0),
                         errors + 1)

    # `trident --help` says of exit status 4 "its error code and message are
    # on stderr", also when the CLI itself refuses a payload over the limit.
    def test_cli_names_the_code_of_a_payload_it_refuses(self):
        err = self.cli.refused("submit", "echo", "--file",
                               self.tmpfile(b"x" * (MAX_PAYLOAD + 1)), "--queue", "e2e_payload")
        self.assertIn("PAYLOAD_TOO_LARGE", err)


class BigPayloadTest(E2ETest):
    """A 64 MiB payload through CLI, broker, embedded Redis, worker and
    back. Raised for it: the broker's max payload, max frame (the payload
    plus the rest of a message) and output limit (what may wait to be sent
    to one connection: the TASK push and the RESULT). The worker and the
    CLI take their frame limit from the broker's HELLO reply."""

    SIZE = 64 << 20
    broker_args = ("--max-payload", str(SIZE), "--max-frame", str(SIZE + (1 << 20)),
                   "--output-limit", str(4 * SIZE))
    worker_queues = ["e2e_big"]

    def test_64_mib_round_trip_through_echo(self):
        data = os.urandom(self.SIZE)
        src = self.tmpfile(data)
        out = tempfile.NamedTemporaryFile(prefix="trident-e2e-out-", delete=False)
        self.addCleanup(os.unlink, out.name)
        with out:
            p = self.cli.run("run", "echo", "--file", src, "--queue", "e2e_big", "--id",
                             "e2e-big-1", stdout=out)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stderr, b"")
        self.assertEqual(os.path.getsize(out.name), self.SIZE)
        with open(out.name, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(data).hexdigest(), "the result is not the payload")
        # Stored as such (`get` describes a binary result rather than print it).
        out = self.cli.ok("get", "e2e-big-1")
        self.assertRegex(out, r"state\s+succeeded")
        self.assertRegex(out, rf"result\s+{self.SIZE} bytes")
        # One byte more is refused.
        err = self.cli.refused("submit", "echo", "--file", self.tmpfile(data + b"!"), "--queue",
                               "e2e_big")
        self.assertIn(f"limit of {self.SIZE} bytes", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
