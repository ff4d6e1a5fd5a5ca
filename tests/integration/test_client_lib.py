"""libtrident's Pool helpers (trident_map, trident_imap_unordered,
trident_apply, trident_apply_async) and its async API (trident/async.h),
run by the C program client_probe against a real tridentd (embedded Redis)
and a real trident-worker. client_probe prints one JSON line per scenario;
the tests assert on it. Under TRIDENT_ASAN the probe runs with leak
detection on, so a leak in libtrident fails the scenario that caused it."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import tridentlib as t  # noqa: E402
from test_cli import WorkerProcess  # noqa: E402


def probe_path():
    return t.binary("tests/integration/client_probe")


class ClientLibTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = t.Broker()
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

    def probe(self, scenario, n=None, addr=None, timeout=120):
        args = [probe_path(), scenario, addr or f"127.0.0.1:{self.broker.port}"]
        if n is not None:
            args.append(str(n))
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(p.stderr, b"")
        lines = p.stdout.decode().splitlines()
        return json.loads(lines[-1])

    # -- Pool helpers -----------------------------------------------------

    def test_map_returns_every_result_in_input_order(self):
        r = self.probe("map", 3000)
        self.assertEqual(r, {"status": 0, "code": "", "n": 3000, "in_order": 3000,
                             "succeeded": 3000, "dead": 0, "unknown": 0, "with_id": 3000,
                             "cancelled": 0})

    def test_map_of_failing_tasks_reports_each_and_the_first_code(self):
        r = self.probe("map-fail", 50)
        self.assertEqual(r["status"], -5)  # TRIDENT_ETASK
        self.assertEqual(r["code"], "TASK_FAILED")
        self.assertEqual((r["dead"], r["succeeded"], r["with_id"]), (50, 0, 50))

    def test_map_timeout_delivers_every_index_with_its_id(self):
        r = self.probe("map-timeout", 3)
        self.assertEqual(r["status"], -2)  # TRIDENT_ETIMEDOUT
        self.assertEqual(r["code"], "TIMEOUT")
        # Every task was acknowledged (it has an id) but none finished.
        self.assertEqual((r["unknown"], r["with_id"], r["succeeded"]), (3, 3, 0))
        # The tasks went on running on the broker: the probe cancelled each by its id.
        self.assertEqual(r["cancelled"], 3)

    def test_imap_unordered_calls_back_once_per_payload(self):
        r = self.probe("imap", 3000)
        self.assertEqual(r, {"status": 0, "n": 3000, "calls": 3000, "twice": 0, "missing": 0,
                             "correct": 3000})

    def test_map_beyond_the_window_runs_in_bounded_batches(self):
        # More than the 10,000 tasks the helpers keep in flight at once.
        r = self.probe("map", 12000)
        self.assertEqual((r["status"], r["in_order"], r["with_id"]), (0, 12000, 12000))

    def test_apply_async_results_taken_in_any_order(self):
        r = self.probe("apply-async")
        self.assertEqual(r, {"correct": 3, "apply": 0, "result": "four"})

    # -- async API --------------------------------------------------------

    def test_async_apply_pipelined(self):
        r = self.probe("async-apply", 5000)
        self.assertEqual((r["answered"], r["ok"], r["correct"], r["errors"], r["twice"],
                          r["missing"]), (5000, 5000, 5000, 0, 0, 0))
        self.assertEqual(r["max_pending"], 1000)  # the window was really used
        self.assertEqual((r["state_calls"], r["last_state"], r["pending_after"]), (1, 0, 0))

    def test_async_submit_pipelined(self):
        r = self.probe("async-submit", 10000)
        self.assertEqual((r["answered"], r["ok"], r["correct"], r["errors"], r["twice"]),
                         (10000, 10000, 10000, 0, 0))
        self.assertEqual(r["max_pending"], 5000)

    def test_async_close_from_a_callback_answers_the_rest(self):
        r = self.probe("async-close", 2000)
        # Closed at the 1000th answer: the requests still in flight were
        # answered with TRIDENT_EIO, each once, and nothing was left pending.
        self.assertEqual(r["ok"], 1000)
        self.assertEqual(r["answered"], r["sent"])
        self.assertEqual(r["errors"], r["sent"] - 1000)
        self.assertGreater(r["errors"], 0)
        self.assertEqual((r["twice"], r["missing"], r["last_code"]), (0, 0, "IO"))

    def test_async_connection_refused(self):
        port = t.free_port()
        r = self.probe("async-refused", 10, addr=f"127.0.0.1:{port}")
        self.assertEqual((r["answered"], r["errors"], r["ok"]), (10, 10, 0))
        self.assertEqual((r["state_calls"], r["last_state"], r["last_code"]), (1, -1, "IO"))


class ClientLibLostBrokerTest(unittest.TestCase):
    """A broker of its own, killed while applies wait for results."""

    def test_async_applies_fail_when_the_broker_dies(self):
        broker = t.Broker()
        worker = WorkerProcess(broker)
        try:
            t.wait_for(lambda: broker.stats()["workers"], 30, "trident-worker to connect")
            p = subprocess.Popen([probe_path(), "async-lost", f"127.0.0.1:{broker.port}", "20"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ready = json.loads(p.stdout.readline())
            self.assertEqual(ready, {"ready": 0})
            broker.kill()
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            r = json.loads(out.decode().splitlines()[-1])
            self.assertEqual((r["answered"], r["errors"], r["twice"]), (20, 20, 0))
            self.assertEqual((r["last_code"], r["pending_after"]), ("IO", 0))
            self.assertEqual((r["state_calls"], r["last_state"]), (2, -1))  # up, then lost
        finally:
            worker.stop()
            broker.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
