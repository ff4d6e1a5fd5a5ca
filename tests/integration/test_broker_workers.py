#!/usr/bin/python3
"""tridentd integration tests: workers, credits, leases.

Real tridentd processes (embedded Redis) and workers spoken for with
python3-msgpack following docs/PROTOCOL.md sections 5.4, 7 and 9: credits
bound the TASK pushes, strict and weighted queue order, a worker that
closes its connection or goes silent loses its tasks (attempt counted, dead
with WORKER_LOST in the end), FAIL retryable or not, first writer wins,
heartbeats renew leases.

    TRIDENT_BUILD=build /usr/bin/python3 test_broker_workers.py [-k pattern]
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tridentlib import BrokerTest, wait_for  # noqa: E402


def assert_nothing_more(test, w, what="TASK"):
    """Nothing else was pushed: a round trip through Redis (a GET) and a
    PING on the worker's own connection, then no queued push of that op."""
    w.error("GET", id="nothing-more-probe")
    w.sync()
    extra = w.take_pushes(what)
    test.assertEqual(extra, [], f"unexpected {what} pushes: {[m.get('id') for m in extra]}")


class CreditTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker()
        self.c = self.track(self.b.client())

    def test_credits_bound_the_task_pushes(self):
        w = self.track(self.b.worker(capacity=10))
        w.credit(3)
        ids = [self.c.request("SUBMIT", name="t")["id"] for _ in range(10)]
        got = [w.task()["id"] for _ in range(3)]
        self.assertEqual(got, ids[:3])
        assert_nothing_more(self, w)
        self.assertEqual(self.b.queue_stats("default")["ready"], 7)
        w.credit(2)
        got += [w.task()["id"] for _ in range(2)]
        self.assertEqual(got, ids[:5])
        assert_nothing_more(self, w)
        wk = self.b.stats()["workers"][0]
        self.assertEqual((wk["credits"], wk["running"]), (0, 5))
        # ACK does not return credit.
        for tid in got:
            self.assertEqual(w.ack(tid), "stored")
        assert_nothing_more(self, w)
        self.assertEqual(self.b.stats()["workers"][0]["running"], 0)
        w.credit(100)
        rest = [w.task()["id"] for _ in range(5)]
        self.assertEqual(rest, ids[5:])
        self.assertEqual(self.b.stats()["workers"][0]["credits"], 95)

    def test_prefetch_is_the_initial_credit(self):
        w = self.track(self.b.worker(capacity=1, prefetch=2))
        for _ in range(4):
            self.c.request("SUBMIT", name="t")
        w.tasks(2)
        assert_nothing_more(self, w)
        w.credit(1)
        w.task()
        assert_nothing_more(self, w)

    def test_many_workers_each_task_once(self):
        workers = [self.track(self.b.worker(capacity=5, credits=5)) for _ in range(3)]
        ids = set(self.c.request("SUBMIT_BATCH", name="t",
                                 tasks=[{} for _ in range(150)])["ids"])
        seen = []
        # Each worker ACKs what it gets and credits the slot back.
        deadline = time.monotonic() + 30
        while len(seen) < 150 and time.monotonic() < deadline:
            for w in workers:
                for t in w.take_pushes("TASK"):
                    seen.append(t["id"])
                    w.send("ACK", id=t["id"], result=b"")
                    w.send("CREDIT", credits=1)
                w.sync()
        self.assertEqual(len(seen), 150)
        self.assertEqual(set(seen), ids, "a task was lost or delivered twice")
        for w in workers:
            assert_nothing_more(self, w)
        wait_for(lambda: self.b.queue_stats("default")["succeeded"] == 150, 10, "150 acks")
        self.assertEqual(self.b.counters()["dispatched"], 150)


class QueueOrderTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker()
        self.c = self.track(self.b.client())

    def test_strict_queue_order(self):
        for i in range(5):
            self.c.request("SUBMIT", queue="lo", name="t", id=f"lo{i}")
        for i in range(5):
            self.c.request("SUBMIT", queue="hi", name="t", id=f"hi{i}")
        w = self.track(self.b.worker(queues=["hi", "lo"]))
        # One credit at a time: every pick sees both queues with tasks ready.
        got = []
        for _ in range(10):
            w.credit(1)
            got.append(w.task()["id"])
        self.assertEqual(got, [f"hi{i}" for i in range(5)] + [f"lo{i}" for i in range(5)])
        # A task of the first queue goes ahead of the waiting ones of the second.
        for i in range(5, 8):
            self.c.request("SUBMIT", queue="lo", name="t", id=f"lo{i}")
        self.c.request("SUBMIT", queue="hi", name="t", id="hi-late")
        w.credit(2)
        self.assertEqual([w.task()["id"] for _ in range(2)], ["hi-late", "lo5"])

    def test_weighted_queues(self):
        n = 200
        self.c.request("SUBMIT_BATCH", queue="heavy", name="t", tasks=[{} for _ in range(n)])
        self.c.request("SUBMIT_BATCH", queue="light", name="t", tasks=[{} for _ in range(n)])
        w = self.track(self.b.worker(queues=["heavy", "light"], weights=[3, 1]))
        counts = {"heavy": 0, "light": 0}
        for _ in range(n):
            w.send("CREDIT", credits=1)
            t = w.task()
            counts[t["queue"]] += 1
            w.send("ACK", id=t["id"], result=b"")
        share = counts["heavy"] / n
        # Expected 3/4; the bounds are over 4 standard deviations wide, and
        # exclude strict order (1.0) and no preference (0.5).
        self.assertGreater(share, 0.62, counts)
        self.assertLess(share, 0.88, counts)


class LostWorkerTest(BrokerTest):
    def test_closed_worker_tasks_go_to_another_worker_at_once(self):
        b = self.start_broker("--lease", "60s")
        c = self.track(b.client())
        w1 = self.track(b.worker(credits=2))
        ids = {c.request("SUBMIT", name="t")["id"] for _ in range(2)}
        self.assertEqual({w1.task()["id"], w1.task()["id"]}, ids)
        w2 = self.track(b.worker(credits=5))
        t0 = time.monotonic()
        w1.close()
        got = [w2.task(timeout=10) for _ in range(2)]
        self.assertLess(time.monotonic() - t0, 5, "requeued by the lease, not at once")
        self.assertEqual({t["id"] for t in got}, ids)
        self.assertEqual([t["attempt"] for t in got], [2, 2])
        for tid in ids:
            g = c.request("GET", id=tid)
            self.assertEqual((g["state"], g["attempt"], g["error_code"]),
                             ("running", 2, "WORKER_LOST"))
        self.assertEqual(b.counters()["requeued"], 2)
        q = b.queue_stats("default")
        self.assertEqual((q["failed"], q["running"]), (2, 2))
        wait_for(lambda: len(b.stats()["workers"]) == 1, 10, "the closed worker to leave STATS")

    def test_requeued_tasks_go_to_the_front(self):
        b = self.start_broker("--lease", "60s")
        c = self.track(b.client())
        w1 = self.track(b.worker(credits=2))
        for i in range(4):
            c.request("SUBMIT", name="t", id=f"t{i}")
        self.assertEqual([w1.task()["id"] for _ in range(2)], ["t0", "t1"])
        w1.close()
        wait_for(lambda: b.counters()["requeued"] == 2, 10, "the requeue")
        w2 = self.track(b.worker(credits=4))
        got = [w2.task() for _ in range(4)]
        self.assertEqual({t["id"] for t in got[:2]}, {"t0", "t1"})
        self.assertEqual([t["id"] for t in got[2:]], ["t2", "t3"])
        self.assertEqual([t["attempt"] for t in got], [2, 2, 1, 1])

    def test_silent_worker_loses_its_tasks_after_the_lease(self):
        b = self.start_broker("--lease", "300ms", "--tick", "20ms")
        c = self.track(b.client())
        w1 = self.track(b.worker(credits=1))
        lease = w1.hello_reply["lease"]
        self.assertEqual(lease, 300)
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(w1.task()["id"], tid)
        t_first = time.monotonic()
        w2 = self.track(b.worker(credits=1))
        t = w2.task(timeout=5)
        elapsed = time.monotonic() - t_first
        self.assertEqual((t["id"], t["attempt"]), (tid, 2))
        self.assertGreaterEqual(elapsed, 0.25, "taken back before the lease ran out")
        self.assertLess(elapsed, 0.3 + 1.5)
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["attempt"], g["error_code"]), ("running", 2, "WORKER_LOST"))
        self.assertGreaterEqual(b.counters()["reaped"], 1)
        # The silent worker's late result is still accepted (not final yet);
        # the second worker's is then a duplicate: first writer wins.
        self.assertEqual(w1.ack(tid, b"from w1"), "stored")
        self.assertEqual(w2.ack(tid, b"from w2"), "duplicate")
        self.assertEqual(c.request("GET", id=tid)["result"], b"from w1")
        self.assertEqual(b.counters()["duplicates_dropped"], 1)

    def test_task_that_keeps_losing_its_worker_goes_dead(self):
        b = self.start_broker("--lease", "60s")
        c = self.track(b.client())
        a = self.track(b.admin())
        tid = c.request("SUBMIT", name="crasher", max_retries=1, push_result=True)["id"]
        for attempt in (1, 2):
            w = self.track(b.worker(credits=1))
            t = w.task()
            self.assertEqual((t["id"], t["attempt"]), (tid, attempt))
            w.close()
        res = c.push("RESULT", timeout=10)
        self.assertEqual((res["id"], res["state"], res["attempt"], res["error_code"]),
                         (tid, "dead", 2, "WORKER_LOST"))
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["attempt"], g["error_code"]), ("dead", 2, "WORKER_LOST"))
        self.assertEqual([x["id"] for x in a.request("DEAD_LIST", queue="default")["tasks"]], [tid])
        q = b.queue_stats("default")
        self.assertEqual((q["dead"], q["failed"], q["ready"]), (1, 2, 0))
        # It does not loop: a new worker gets nothing.
        w = self.track(b.worker(credits=1))
        assert_nothing_more(self, w)

    def test_task_whose_leases_keep_expiring_goes_dead(self):
        b = self.start_broker("--lease", "200ms", "--tick", "20ms")
        c = self.track(b.client())
        tid = c.request("SUBMIT", name="hang", max_retries=1)["id"]
        w1 = self.track(b.worker(credits=1))
        first = w1.task(timeout=5)
        self.assertEqual((first["id"], first["attempt"]), (tid, 1))
        w2 = self.track(b.worker(credits=1))
        # w1 is silent; the other worker gets attempt 2 and is silent too.
        second = w2.task(timeout=5)
        self.assertEqual((second["id"], second["attempt"]), (tid, 2))
        g = wait_for(lambda: (lambda g: g if g["state"] == "dead" else None)(
            c.request("GET", id=tid)), 5, "the task to go dead")
        self.assertEqual((g["attempt"], g["error_code"]), (2, "WORKER_LOST"))
        self.assertIn("lease", g["error"])


class ResultsTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker("--retry-base", "10m", "--retry-cap", "1h")
        self.c = self.track(self.b.client())

    def test_fail_retryable_or_not(self):
        c = self.c
        w = self.track(self.b.worker(credits=3))
        retry = c.request("SUBMIT", name="t", max_retries=3)["id"]
        w.task()
        r = w.fail(retry, code="TIMEOUT", message="slow")
        self.assertEqual(r["outcome"], "retry")
        self.assertIn("run_at", r)
        self.assertEqual(c.request("GET", id=retry)["state"], "retrying")
        fatal = c.request("SUBMIT", name="t", max_retries=3)["id"]
        w.task()
        r = w.fail(fatal, code="NO_HANDLER", message="no handler for t", retryable=False)
        self.assertEqual(r["outcome"], "dead")
        self.assertNotIn("run_at", r)
        g = c.request("GET", id=fatal)
        self.assertEqual((g["state"], g["attempt"], g["error_code"], g["error"]),
                         ("dead", 1, "NO_HANDLER", "no handler for t"))
        # The default code is TASK_FAILED; max_retries 0 means one attempt.
        last = c.request("SUBMIT", name="t", max_retries=0)["id"]
        w.task()
        self.assertEqual(w.fail(last)["outcome"], "dead")
        self.assertEqual(c.request("GET", id=last)["error_code"], "TASK_FAILED")
        # A FAIL for a task that is final changes nothing.
        self.assertEqual(w.fail(fatal, message="again")["outcome"], "duplicate")
        self.assertEqual(c.request("GET", id=fatal)["error"], "no handler for t")
        self.assertEqual(self.b.queue_stats("default")["dead"], 2)

    def test_fail_from_a_worker_not_running_it_is_duplicate(self):
        c = self.c
        w1 = self.track(self.b.worker(credits=1))
        w2 = self.track(self.b.worker(credits=0))
        tid = c.request("SUBMIT", name="t")["id"]
        w1.task()
        self.assertEqual(w2.fail(tid, retryable=False)["outcome"], "duplicate")
        self.assertEqual(c.request("GET", id=tid)["state"], "running")
        # Progress from it is not recorded either.
        w2.request("PROGRESS", id=tid, progress=77, message="not mine")
        w1.request("PROGRESS", id=tid, progress=10, message="mine")
        g = c.request("GET", id=tid)
        self.assertEqual((g["progress"], g["message"]), (10, "mine"))
        self.assertEqual(w1.ack(tid, b"ok"), "stored")

    def test_duplicate_ack_first_writer_wins(self):
        c = self.c
        w = self.track(self.b.worker(credits=2))
        tid = c.request("SUBMIT", name="t", push_result=True)["id"]
        w.task()
        self.assertEqual(w.ack(tid, b"first"), "stored")
        self.assertEqual(w.ack(tid, b"second"), "duplicate")
        self.assertEqual(c.request("GET", id=tid)["result"], b"first")
        # Two ACKs in one batch (pipelined): the first one wins.
        tid2 = c.request("SUBMIT", name="t")["id"]
        w.task()
        r1 = w.send("ACK", id=tid2, result=b"one")
        r2 = w.send("ACK", id=tid2, result=b"two")
        self.assertEqual((w.reply(r1)["outcome"], w.reply(r2)["outcome"]), ("stored", "duplicate"))
        self.assertEqual(c.request("GET", id=tid2)["result"], b"one")
        # A FAIL after the ACK is a duplicate too.
        self.assertEqual(w.fail(tid2, retryable=False)["outcome"], "duplicate")
        self.assertEqual(c.request("GET", id=tid2)["state"], "succeeded")
        self.assertEqual(self.b.counters()["duplicates_dropped"], 3)
        self.assertEqual(self.b.counters()["acked"], 2)
        res = c.push("RESULT")
        self.assertEqual(res["result"], b"first")
        c.sync()
        self.assertEqual(c.take_pushes("RESULT"), [], "a second RESULT for one task")


class HeartbeatTest(BrokerTest):
    def test_heartbeats_renew_leases(self):
        b = self.start_broker("--lease", "300ms", "--heartbeat", "100ms", "--tick", "20ms")
        c = self.track(b.client())
        w1 = self.track(b.worker(credits=1))
        self.assertEqual((w1.hello_reply["heartbeat"], w1.hello_reply["lease"]), (100, 300))
        tid = c.request("SUBMIT", name="long")["id"]
        self.assertEqual(w1.task()["id"], tid)
        w2 = self.track(b.worker(credits=1))
        # Heartbeat every 100 ms for 4 leases; meanwhile w2 gets nothing.
        end = time.monotonic() + 1.2
        beats = 0
        while time.monotonic() < end:
            w1.request("HEARTBEAT", running=[tid, "not-mine"], rss=1 << 20, done=0, failed=0)
            beats += 1
            try:
                m = w2.read_frame(timeout=0.1)  # paces the heartbeats
            except TimeoutError:
                continue
            self.fail(f"the other worker got {m} while the lease was renewed")
        self.assertGreaterEqual(beats, 8)
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["attempt"]), ("running", 1))
        assert_nothing_more(self, w2)
        self.assertEqual(b.counters()["reaped"], 0)
        # No more heartbeats: the lease runs out and w2 gets the task.
        t_stop = time.monotonic()
        t = w2.task(timeout=5)
        self.assertEqual((t["id"], t["attempt"]), (tid, 2))
        self.assertGreaterEqual(time.monotonic() - t_stop, 0.15)


if __name__ == "__main__":
    unittest.main(verbosity=2)
