"""trident-worker against a real tridentd (embedded Redis): processes,
threads, handlers, time limits, cancel, crashes, recycling, shutdown."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import tridentlib as t  # noqa: E402


class Worker:
    """A real trident-worker, stopped by the PID started here."""

    def __init__(self, broker, *args, processes=2, threads=2, env=None):
        self.dir = tempfile.mkdtemp(prefix="trident-worker-")
        self.scratch = os.path.join(self.dir, "scratch")
        os.mkdir(self.scratch)
        self.log = os.path.join(self.dir, "worker.log")
        cmd = [t.binary("worker/trident-worker"), "--broker", f"127.0.0.1:{broker.port}",
               "--processes", str(processes), "--threads", str(threads),
               "--scratch-root", self.scratch, "-vv", *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=full_env)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def sanitizer_report(self):
        text = self.log_text()
        for mark in t.SANITIZER_MARKS:
            at = text.find(mark)
            if at >= 0:
                return text[max(0, at - 200):at + 3000]
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def stats(c):
    return c.request("STATS")["stats"]


def workers(c):
    return stats(c)["workers"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class WorkerTests(unittest.TestCase):
    def setUp(self):
        self.broker = t.Broker(args=["--retry-base", "20ms", "--retry-cap", "100ms"])
        self.workers = []
        self.c = self.broker.client()

    def tearDown(self):
        self.c.close()
        for w in self.workers:
            w.stop()
        self.broker.stop()

    def worker(self, *args, processes=2, threads=2, ready=True, env=None):
        w = Worker(self.broker, *args, processes=processes, threads=threads, env=env)
        self.workers.append(w)
        if ready:
            t.wait_for(lambda: len(workers(self.c)) == processes, 20, "worker processes to connect")
        return w

    def run_task(self, name, payload=b"", **opts):
        """Submit and wait for the RESULT push."""
        r = self.c.request("SUBMIT", name=name, payload=payload, push_result=True, **opts)
        res = self.c.push("RESULT", timeout=30)
        self.assertEqual(res["id"], r["id"])
        return res

    def test_echo_and_many_results_in_order_of_submission(self):
        self.worker()
        self.assertEqual(self.run_task("echo", b"hello")["result"], b"hello")
        rids = [self.c.send("SUBMIT", name="sha256", payload=str(i).encode(), push_result=True)
                for i in range(2000)]
        ids = {self.c.reply(rid)["id"]: i for i, rid in enumerate(rids)}
        import hashlib
        for _ in range(2000):
            res = self.c.push("RESULT", timeout=30)
            self.assertEqual(res["state"], "succeeded")
            want = hashlib.sha256(str(ids[res["id"]]).encode()).hexdigest().encode()
            self.assertEqual(res["result"], want)
        # Both processes took part (their counts come with their heartbeats).
        t.wait_for(lambda: all(w["done"] > 0 for w in workers(self.c)), 10, "both to report work")

    def test_unknown_name_fails_at_once_without_retry(self):
        self.worker()
        res = self.run_task("no_such_handler", max_retries=5)
        self.assertEqual((res["state"], res["error_code"], res["attempt"]), ("dead", "NO_HANDLER", 1))

    def test_kill9_of_a_child_mid_task_runs_it_again_elsewhere(self):
        self.worker(processes=2, threads=1)
        r = self.c.request("SUBMIT", name="sleep", payload=b"1500", push_result=True)
        busy = t.wait_for(lambda: [w for w in workers(self.c) if w["running"] == 1], 10, "the task to start")
        os.kill(busy[0]["pid"], signal.SIGKILL)
        res = self.c.push("RESULT", timeout=30)
        self.assertEqual((res["id"], res["state"], res["attempt"]), (r["id"], "succeeded", 2))

    def test_a_task_that_crashes_every_child_goes_dead_and_the_worker_keeps_serving(self):
        self.worker("--test-handlers", processes=2, threads=1)
        res = self.run_task("crash", max_retries=1)
        self.assertEqual((res["state"], res["error_code"], res["attempt"]), ("dead", "WORKER_LOST", 2))
        t.wait_for(lambda: len(workers(self.c)) == 2, 20, "the children to be replaced")
        self.assertEqual(self.run_task("echo", b"still here")["result"], b"still here")

    def test_sync_time_limit(self):
        self.worker()
        res = self.run_task("sleep", b"10000", timeout=200, max_retries=0)
        self.assertEqual((res["state"], res["error_code"]), ("dead", "TIMEOUT"))

    def test_a_handler_that_ignores_its_time_limit_gets_its_process_replaced(self):
        self.worker("--test-handlers", "--kill-grace", "200ms", processes=1, threads=1)
        pid = workers(self.c)[0]["pid"]
        res = self.run_task("block", b"3000", timeout=100, max_retries=0)
        self.assertEqual((res["state"], res["error_code"]), ("dead", "TIMEOUT"))
        t.wait_for(lambda: [w for w in workers(self.c) if w["pid"] != pid], 20, "a new process")
        self.assertEqual(self.run_task("echo", b"x")["result"], b"x")

    def test_cancel_a_running_task(self):
        self.worker(processes=1, threads=1)
        r = self.c.request("SUBMIT", name="sleep", payload=b"20000", push_result=True)
        t.wait_for(lambda: workers(self.c)[0]["running"] == 1, 10, "the task to start")
        out = self.c.request("CANCEL", id=r["id"])
        self.assertEqual((out["outcome"], out["state"]), ("running", "cancelled"))
        res = self.c.push("RESULT", timeout=10)
        self.assertEqual(res["state"], "cancelled")
        # The slot comes free quickly: the sleep handler watches for cancellation.
        self.assertEqual(self.run_task("echo", b"next")["result"], b"next")

    def test_progress_from_an_executor_thread_shows_in_get(self):
        self.worker(processes=1, threads=1)
        r = self.c.request("SUBMIT", name="sleep", payload=b"1200")
        got = t.wait_for(lambda: (lambda g: g if g.get("progress", 0) >= 25 else None)(
            self.c.request("GET", id=r["id"])), 10, "progress")
        self.assertEqual(got["state"], "running")
        self.assertEqual(got["message"], "sleeping")

    def test_plugin_with_a_sync_and_an_async_handler(self):
        plugin = t.binary("examples/libexample_plugin.so")
        self.worker("--plugin", plugin, "--slots", "3", "--kill-grace", "200ms", processes=1, threads=1)
        self.assertEqual(self.run_task("reverse", b"abc\x00d")["result"], b"d\x00cba")
        # One thread, yet three async tasks run at once: none holds a thread.
        rids = [self.c.send("SUBMIT", name="later_echo", payload=b"1500:%d" % i, push_result=True)
                for i in range(3)]
        for rid in rids:
            self.c.reply(rid)
        t.wait_for(lambda: workers(self.c)[0]["running"] == 3, 10, "three tasks running at once")
        results = sorted(self.c.push("RESULT", timeout=10)["result"] for _ in range(3))
        self.assertEqual(results, [b"0", b"1", b"2"])
        res = self.run_task("later_echo", b"5000:late", timeout=100, max_retries=0)
        self.assertEqual((res["state"], res["error_code"]), ("dead", "TIMEOUT"))

    def test_exec_handlers_run_programs(self):
        upper = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "exec", "upper.py")
        self.worker("--exec", f"upper=/usr/bin/python3 {os.path.abspath(upper)}",
                    "--exec", "slow=sleep 30", "--exec", "stubborn=trap '' TERM; sleep 30",
                    "--kill-grace", "300ms", processes=1, threads=2)
        self.assertEqual(self.run_task("upper", b"hello \xc3\xa9t\xc3\xa9")["result"],
                         "HELLO \u00c9T\u00c9".encode())
        res = self.run_task("upper", b"", max_retries=0)
        self.assertEqual((res["state"], res["error_code"]), ("dead", "TASK_FAILED"))
        self.assertIn("exited with status 3", res["error"])
        # A time limit: SIGTERM to the program's group; one that ignores it
        # is killed after the kill grace. Either way: TIMEOUT.
        for name in ("slow", "stubborn"):
            res = self.run_task(name, timeout=200, max_retries=0)
            self.assertEqual((res["state"], res["error_code"]), ("dead", "TIMEOUT"), name)
        # Cancel of a running program.
        r = self.c.request("SUBMIT", name="slow", push_result=True)
        t.wait_for(lambda: workers(self.c)[0]["running"] == 1, 10, "the program to start")
        self.assertEqual(self.c.request("CANCEL", id=r["id"])["outcome"], "running")
        self.assertEqual(self.c.push("RESULT", timeout=10)["state"], "cancelled")
        self.assertEqual(self.run_task("upper", b"ok")["result"], b"OK")

    def test_max_memory_per_child_recycles_a_leaking_process(self):
        self.worker("--test-handlers", "--max-memory-per-child", "64M", processes=1, threads=1)
        pid = workers(self.c)[0]["pid"]
        self.assertEqual(self.run_task("leak", b"100")["state"], "succeeded")
        t.wait_for(lambda: [w for w in workers(self.c) if w["pid"] != pid], 20, "a fresh process")
        self.assertEqual(self.run_task("echo", b"x")["result"], b"x")

    def test_sighup_rolling_restart_under_load_loses_nothing(self):
        w = self.worker(processes=2, threads=2)
        old = {x["pid"] for x in workers(self.c)}
        rids = [self.c.send("SUBMIT", name="sleep", payload=b"20", push_result=True) for _ in range(200)]
        for rid in rids:
            self.c.reply(rid)
        for i in range(200):
            if i == 40:
                w.proc.send_signal(signal.SIGHUP)
            self.assertEqual(self.c.push("RESULT", timeout=30)["state"], "succeeded")
        t.wait_for(lambda: {x["pid"] for x in workers(self.c)}.isdisjoint(old), 20, "new processes")

    def test_results_reach_a_restarted_broker(self):
        self.worker(processes=1, threads=1)
        r = self.c.request("SUBMIT", name="sleep", payload=b"1500")
        t.wait_for(lambda: workers(self.c)[0]["running"] == 1, 10, "the task to start")
        self.c.close()
        self.broker.kill()
        self.broker.start()  # same port and data dir: the embedded Redis's AOF is back
        self.c = self.broker.client()
        got = t.wait_for(lambda: (lambda g: g if g["state"] == "succeeded" else None)(
            self.c.request("GET", id=r["id"])), 20, "the result delivered after the reconnect")
        self.assertEqual((got["result"], got["attempt"]), (b"1500", 1))

    def test_a_long_task_does_not_hold_short_ones_hostage(self):
        self.worker(processes=2, threads=1)
        long = self.c.request("SUBMIT", name="sleep", payload=b"3000", push_result=True)["id"]
        t.wait_for(lambda: sum(w["running"] for w in workers(self.c)) == 1, 10, "the long task to start")
        short = {self.c.request("SUBMIT", name="echo", payload=b"%d" % i, push_result=True)["id"]
                 for i in range(5)}
        done = [self.c.push("RESULT", timeout=30)["id"] for _ in range(6)]
        self.assertEqual(set(done[:5]), short)
        self.assertEqual(done[5], long)

    def test_a_plugin_that_does_not_load_stops_the_start(self):
        w = Worker(self.broker, "--plugin", "/nonexistent/plugin.so", processes=1, threads=1)
        self.workers.append(w)
        self.assertEqual(w.proc.wait(timeout=20), 1)
        self.assertIn("/nonexistent/plugin.so", w.log_text())

    def test_sighup_deploys_a_new_plugin_version(self):
        so = os.path.join(tempfile.mkdtemp(prefix="trident-plugin-"), "plugin.so")
        shutil.copy(t.binary("examples/libexample_plugin.so"), so)
        w = self.worker("--plugin", so, processes=2, threads=1)
        self.assertEqual(self.run_task("reverse", b"abc")["result"], b"cba")
        old = {x["pid"] for x in workers(self.c)}
        # Replace the file the way a deployment does (a new inode), then SIGHUP.
        shutil.copy(t.binary("examples/libexample_plugin_v2.so"), so + ".new")
        os.rename(so + ".new", so)
        w.proc.send_signal(signal.SIGHUP)
        t.wait_for(lambda: (lambda now: len(now) == 2 and now.isdisjoint(old))(
            {x["pid"] for x in workers(self.c)}), 20, "the new processes")
        self.assertEqual(self.run_task("reverse", b"abc")["result"], b"v2:cba")
        shutil.rmtree(os.path.dirname(so))

    def test_max_tasks_per_child_recycles_exactly(self):
        self.worker("--max-tasks-per-child", "5", processes=1, threads=1)
        seen = {}
        for i in range(12):
            self.assertEqual(self.run_task("echo", b"%d" % i)["state"], "succeeded")
            for w in workers(self.c):
                seen[w["pid"]] = max(seen.get(w["pid"], 0), w["done"])
        self.assertGreaterEqual(len(seen), 3)
        self.assertTrue(all(done <= 5 for done in seen.values()), seen)

    def test_sigterm_finishes_running_tasks(self):
        w = self.worker(processes=2, threads=2)
        rids = [self.c.send("SUBMIT", name="sleep", payload=b"300", push_result=True) for _ in range(4)]
        for rid in rids:
            self.c.reply(rid)
        t.wait_for(lambda: sum(x["running"] for x in workers(self.c)) == 4, 10, "4 running tasks")
        self.assertEqual(w.terminate(), 0)
        states = [self.c.push("RESULT", timeout=10)["state"] for _ in range(4)]
        self.assertEqual(states, ["succeeded"] * 4)

    def test_scratch_dir_removed_after_kill9(self):
        w = self.worker(processes=1, threads=1)
        dirs = t.wait_for(lambda: glob.glob(os.path.join(w.scratch, "*", "slot-*")), 10, "a scratch dir")
        pid = workers(self.c)[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        t.wait_for(lambda: not os.path.exists(dirs[0]), 10, "the scratch dir to go")

    # -- queues ------------------------------------------------------------

    def submit_to(self, queue, n, name="echo"):
        """n tasks pipelined into queue; returns {id: queue}."""
        rids = [self.c.send("SUBMIT", name=name, queue=queue, payload=b"%d" % i, push_result=True)
                for i in range(n)]
        return {self.c.reply(rid)["id"]: queue for rid in rids}

    def test_queues_in_strict_order(self):
        # b's tasks are older: only the order of --queues puts a's first.
        where = self.submit_to("b", 10)
        where.update(self.submit_to("a", 10))
        self.worker("--queues", "a,b", processes=1, threads=1)
        taken = [where[self.c.push("RESULT", timeout=30)["id"]] for _ in range(20)]
        self.assertEqual(taken, ["a"] * 10 + ["b"] * 10)

    def test_queue_weights(self):
        # Both queues hold more than the 100 tasks counted, so both have
        # tasks ready throughout; one slot takes them one at a time.
        where = self.submit_to("b", 120)
        where.update(self.submit_to("a", 120))
        self.worker("--queues", "a:3,b:1", processes=1, threads=1)
        taken = [where[self.c.push("RESULT", timeout=30)["id"]] for _ in range(100)]
        share = taken.count("a") / len(taken)
        self.assertTrue(0.6 <= share <= 0.9, f"share from a: {share} ({''.join(taken)})")

    # -- supervisor signals ------------------------------------------------

    def test_sigquit_kills_the_children_and_the_broker_requeues_their_tasks(self):
        w = self.worker(processes=2, threads=1)
        pids = [x["pid"] for x in workers(self.c)]
        ids = [self.c.request("SUBMIT", name="sleep", payload=b"5000", push_result=True,
                              max_retries=3)["id"] for _ in range(2)]
        t.wait_for(lambda: sum(x["running"] for x in workers(self.c)) == 2, 10, "2 running tasks")
        start = time.monotonic()
        w.proc.send_signal(signal.SIGQUIT)
        rc = w.proc.wait(timeout=20)
        took = time.monotonic() - start
        self.assertGreaterEqual(rc, 0, "the supervisor must handle SIGQUIT, not die of it")
        self.assertLess(took, 2.5, "SIGQUIT waited for the running tasks")
        self.assertEqual([p for p in pids if alive(p)], [], "children outlived the supervisor")
        self.assertNotIn("exiting (", w.log_text(), "a child stopped gracefully")
        t.wait_for(lambda: workers(self.c) == [], 5, "the connections to close")
        for task_id in ids:
            got = self.c.request("GET", id=task_id)
            self.assertIn(got["state"], ("retrying", "queued"), got)
            self.assertEqual((got["attempt"], got["error_code"]), (1, "WORKER_LOST"), got)
        self.worker(processes=2, threads=1)
        done = {}
        for _ in range(2):
            res = self.c.push("RESULT", timeout=30)
            done[res["id"]] = (res["state"], res["attempt"], res.get("result"))
        self.assertEqual(done, {i: ("succeeded", 2, b"5000") for i in ids})
        self.assertIsNone(w.sanitizer_report(), w.sanitizer_report())

    def test_sigttin_adds_a_child_and_sigttou_removes_one(self):
        w = self.worker(processes=2, threads=1)
        before = {x["pid"] for x in workers(self.c)}
        w.proc.send_signal(signal.SIGTTIN)
        t.wait_for(lambda: len(workers(self.c)) == 3, 20, "a third process")
        added = {x["pid"] for x in workers(self.c)} - before
        self.assertEqual(len(added), 1)
        extra = added.pop()
        w.proc.send_signal(signal.SIGTTOU)
        t.wait_for(lambda: len(workers(self.c)) == 2, 20, "back to two processes")
        # The one given up is the slot added last; it is not replaced.
        t.wait_for(lambda: not alive(extra), 20, "the third process to exit")
        self.assertEqual(self.run_task("echo", b"x")["result"], b"x")
        self.assertEqual({x["pid"] for x in workers(self.c)}, before)
        self.assertEqual(w.terminate(), 0)

    def test_sigterm_hands_back_tasks_that_outlast_the_grace(self):
        w = self.worker("--test-handlers", "--grace", "300ms", processes=1, threads=2)
        ids = [self.c.request("SUBMIT", name="block", payload=b"5000", push_result=True,
                              max_retries=3)["id"] for _ in range(2)]
        t.wait_for(lambda: workers(self.c)[0]["running"] == 2, 10, "2 running tasks")
        start = time.monotonic()
        self.assertEqual(w.terminate(timeout=20), 0)
        self.assertLess(time.monotonic() - start, 3.0, "the worker waited past its grace")
        for task_id in ids:
            got = self.c.request("GET", id=task_id)
            self.assertIn(got["state"], ("retrying", "queued"), got)
            self.assertEqual((got["attempt"], got["error_code"]), (1, "TASK_FAILED"), got)
            self.assertIn("stopped", got["error"])
        self.assertIsNone(w.sanitizer_report(), w.sanitizer_report())
        self.worker("--test-handlers", processes=1, threads=2)
        done = {}
        for _ in range(2):
            res = self.c.push("RESULT", timeout=30)
            done[res["id"]] = (res["state"], res["attempt"], res.get("result"))
        self.assertEqual(done, {i: ("succeeded", 2, b"unblocked") for i in ids})

    # -- cancel of an async task -------------------------------------------

    def test_cancel_a_running_async_task_frees_its_slot_when_the_handler_completes(self):
        plugin = t.binary("examples/libexample_plugin.so")
        self.worker("--plugin", plugin, "--kill-grace", "200ms", processes=1, threads=1)
        start = time.monotonic()
        r = self.c.request("SUBMIT", name="later_echo", payload=b"5000:x", push_result=True)
        t.wait_for(lambda: workers(self.c)[0]["running"] == 1, 10, "the task to start")
        out = self.c.request("CANCEL", id=r["id"])
        self.assertEqual((out["outcome"], out["state"]), ("running", "cancelled"))
        self.assertEqual(self.c.push("RESULT", timeout=10)["state"], "cancelled")
        # The worker's FAIL (CANCELLED) comes after the kill grace, not after
        # the 5 s of the handler's timer; the task being final already, the
        # broker drops it as a duplicate.
        t.wait_for(lambda: stats(self.c)["counters"]["duplicates_dropped"] == 1, 10,
                   "the worker to report the cancelled task")
        self.assertLess(time.monotonic() - start, 3.0, "the report waited for the handler")
        # Its slot stays taken until the handler completes: no credit, and a
        # task submitted now runs only once the timer has fired.
        self.assertEqual([(x["running"], x["credits"]) for x in workers(self.c)], [(0, 0)])
        self.assertEqual(self.run_task("echo", b"next")["result"], b"next")
        self.assertGreaterEqual(time.monotonic() - start, 4.5, "the slot came free too early")
        t.wait_for(lambda: workers(self.c)[0]["credits"] == 1, 10, "the slot's credit")

    # -- authentication ----------------------------------------------------

    def test_a_wrong_password_is_refused_and_retried_and_the_right_one_serves(self):
        self.c.close()
        self.broker.stop()
        self.broker = t.Broker(args=["--retry-base", "20ms", "--retry-cap", "100ms"],
                               env={"TRIDENT_PASSWORD": "open sesame"})
        self.c = self.broker.client(role="client")
        since = time.monotonic()
        bad = self.worker(processes=1, ready=False, env={"TRIDENT_PASSWORD": "wrong"})
        t.wait_for(lambda: bad.log_text().count("refused HELLO") >= 3, 20, "three refusals")
        self.assertIn("AUTH_FAILED", bad.log_text())
        self.assertEqual(workers(self.c), [])
        pw = os.path.join(bad.dir, "password")
        with open(pw, "w") as f:
            f.write("open sesame\n")
        self.worker("--password-file", pw, processes=1)
        self.assertEqual(self.run_task("echo", b"let in")["result"], b"let in")
        # The refused one still runs, still retrying, its child never replaced.
        n = bad.log_text().count("refused HELLO")
        t.wait_for(lambda: bad.log_text().count("refused HELLO") > n, 20, "another retry")
        self.assertIsNone(bad.proc.poll())
        self.assertEqual(bad.log_text().count(") started in"), 1, bad.log_text()[-3000:])
        self.assertIsNone(bad.sanitizer_report(), bad.sanitizer_report())
        self.assertEqual(len(workers(self.c)), 1)
        # With a backoff between attempts: no more than about ten a second.
        refusals, took = bad.log_text().count("refused HELLO"), time.monotonic() - since
        self.assertLessEqual(refusals, 3 + 10 * took,
                             f"{refusals} refused HELLOs in {took:.2f} s: no backoff")


if __name__ == "__main__":
    unittest.main(verbosity=2)
