#!/usr/bin/python3
"""tridentd integration tests: the life of a task, seen through the protocol.

Real tridentd processes (embedded Redis), spoken to with python3-msgpack
following docs/PROTOCOL.md sections 5 and 7: SUBMIT/GET, SUBMIT_BATCH,
idempotent submission, priorities, delay and run_at, retries with backoff
into the dead set, DEAD_LIST/DEAD_RETRY/DEAD_PURGE, PAUSE/RESUME, PURGE,
CANCEL in each state, GET with wait, push_result, STATS and INFO.

Timing: a "not before" is asserted strictly (within the broker's 1 ms clock
resolution), an "in time" loosely (within 1 s); nothing sleeps to wait for
the broker, and negative checks ("nothing else arrived") end with a round
trip on the same connection.

    TRIDENT_BUILD=build /usr/bin/python3 test_broker_tasks.py [-k pattern]
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tridentlib import BrokerTest, frame, now_ms, wait_for  # noqa: E402

TIMER_SLACK = 0.02  # s: how early a libevent timer of the broker may fire
CROCKFORD = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
GET_KEYS = {"op", "rid", "id", "queue", "name", "state", "attempt", "max_retries", "priority",
            "created_at", "run_at", "started_at", "finished_at", "progress", "message", "result",
            "error_code", "error"}


class SubmitGetTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker()
        self.c = self.track(self.b.client(client="tasks-test"))

    def test_submit_get_round_trip(self):
        c = self.c
        t0 = now_ms()
        r = c.request("SUBMIT", queue="q1", name="echo", payload=b"\x00hello\xff")
        self.assertFalse(r["duplicate"])
        tid = r["id"]
        self.assertRegex(tid, CROCKFORD)
        self.assertEqual(set(r), {"op", "rid", "id", "duplicate"})
        g = c.request("GET", id=tid)
        self.assertTrue(set(g) <= GET_KEYS, g)
        self.assertEqual((g["id"], g["queue"], g["name"], g["state"], g["attempt"],
                          g["max_retries"], g["priority"]),
                         (tid, "q1", "echo", "queued", 0, 3, 0))
        self.assertTrue(t0 <= g["created_at"] <= now_ms())
        for absent in ("started_at", "finished_at", "result", "error_code", "error", "run_at"):
            self.assertNotIn(absent, g)

        w = self.track(self.b.worker(queues=["q1"], credits=1))
        task = w.task()
        self.assertEqual((task["id"], task["queue"], task["name"], task["payload"], task["attempt"],
                          task["timeout"], task["priority"], task["created_at"]),
                         (tid, "q1", "echo", b"\x00hello\xff", 1, 0, 0, g["created_at"]))
        self.assertNotIn("deadline", task)
        self.assertNotIn("rid", task)
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["attempt"]), ("running", 1))
        self.assertGreaterEqual(g["started_at"], g["created_at"])
        w.request("PROGRESS", id=tid, progress=40, message="reading")
        g = c.request("GET", id=tid)
        self.assertEqual((g["progress"], g["message"]), (40, "reading"))
        self.assertEqual(w.ack(tid, b"\x01result"), "stored")
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["result"], g["attempt"]), ("succeeded", b"\x01result", 1))
        self.assertGreaterEqual(g["finished_at"], g["started_at"])
        self.assertNotIn("error_code", g)
        q = self.b.queue_stats("q1")
        self.assertEqual((q["ready"], q["running"], q["succeeded"]), (0, 0, 1))

    def test_get_reports_progress_zero_before_any_progress(self):
        # progress: "always ... 0 if none" (PROTOCOL.md 5.2, GET).
        c = self.c
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(c.request("GET", id=tid).get("progress"), 0)
        w = self.track(self.b.worker(credits=1))
        w.task()
        self.assertEqual(c.request("GET", id=tid).get("progress"), 0)
        w.ack(tid)
        self.assertEqual(c.request("GET", id=tid).get("progress"), 0)

    def test_submit_options_reach_the_task(self):
        c = self.c
        tid = c.request("SUBMIT", name="opts", priority=-7, max_retries=9, timeout=5000,
                        id="client-id-1")["id"]
        self.assertEqual(tid, "client-id-1")
        g = c.request("GET", id=tid)
        self.assertEqual((g["priority"], g["max_retries"]), (-7, 9))
        w = self.track(self.b.worker(credits=1))
        before = now_ms()
        task = w.task()
        self.assertEqual((task["timeout"], task["priority"]), (5000, -7))
        self.assertTrue(before + 5000 - 1000 <= task["deadline"] <= now_ms() + 5000,
                        task["deadline"])
        # Unknown keys are ignored; an empty payload is allowed.
        tid2 = c.request("SUBMIT", name="x", some_future_key=1.5)["id"]
        self.assertEqual(set(w.credit(1)), {"op", "rid"})
        t2 = w.task()
        self.assertEqual((t2["id"], t2["payload"]), (tid2, b""))

    def test_broker_ids_increase_and_client_ids_are_exact(self):
        c = self.c
        ids = [c.request("SUBMIT", name="t")["id"] for _ in range(50)]
        for tid in ids:
            self.assertRegex(tid, CROCKFORD)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 50)
        # Client ids are compared byte for byte.
        self.assertFalse(c.request("SUBMIT", name="t", id="Case")["duplicate"])
        self.assertFalse(c.request("SUBMIT", name="t", id="case")["duplicate"])
        self.assertTrue(c.request("SUBMIT", name="t", id="Case")["duplicate"])
        self.assertEqual(self.b.queue_stats("default")["ready"], 52)

    def test_submit_batch(self):
        c = self.c
        r = c.request("SUBMIT_BATCH", queue="bq", name="dflt", priority=2, payload=b"top", tasks=[
            {"id": "b-1"},
            {"name": "own", "payload": b"mine", "queue": "other"},
            {"id": "b-3", "priority": 9},
            {"delay": 600000},
        ])
        ids = r["ids"]
        self.assertEqual(len(ids), 4)
        self.assertEqual(ids[0], "b-1")
        self.assertEqual(ids[2], "b-3")
        self.assertFalse(r.get("duplicates"))
        g = [c.request("GET", id=i) for i in ids]
        self.assertEqual([(x["queue"], x["name"], x["priority"], x["state"]) for x in g],
                         [("bq", "dflt", 2, "queued"), ("other", "own", 2, "queued"),
                          ("bq", "dflt", 9, "queued"), ("bq", "dflt", 2, "scheduled")])
        w = self.track(self.b.worker(queues=["other"], credits=1))
        self.assertEqual(w.task()["payload"], b"mine")
        # Duplicates, inside the batch and against stored tasks, by index.
        r = c.request("SUBMIT_BATCH", name="t", queue="bq", tasks=[
            {"id": "n-1"}, {"id": "b-1"}, {"id": "n-1"}, {}])
        self.assertEqual(r["ids"][:3], ["n-1", "b-1", "n-1"])
        self.assertEqual(r["duplicates"], [1, 2])
        q = self.b.queue_stats("bq")
        self.assertEqual((q["ready"], q["scheduled"]), (4, 1))

    def test_idempotent_submit(self):
        c = self.c
        first = c.request("SUBMIT", name="once", id="order-42", payload=b"first")
        self.assertEqual((first["id"], first["duplicate"]), ("order-42", False))
        # Other keys of the repeat are ignored: it is the same task.
        again = c.request("SUBMIT", name="other", id="order-42", payload=b"second", queue="q2")
        self.assertEqual((again["id"], again["duplicate"]), ("order-42", True))
        other = self.track(self.b.client())
        self.assertTrue(other.request("SUBMIT", name="once", id="order-42")["duplicate"])
        w = self.track(self.b.worker(queues=["default", "q2"], credits=5))
        task = w.task()
        self.assertEqual((task["id"], task["payload"], task["queue"]), ("order-42", b"first",
                                                                          "default"))
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [], "the task was delivered twice")
        # Still a duplicate while it runs and once it is final.
        self.assertTrue(c.request("SUBMIT", name="once", id="order-42")["duplicate"])
        self.assertEqual(w.ack("order-42", b"done"), "stored")
        self.assertTrue(c.request("SUBMIT", name="once", id="order-42")["duplicate"])
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [])
        counters = self.b.counters()
        self.assertEqual((counters["submitted"], counters["dispatched"]), (1, 1))
        self.assertEqual(self.b.queue_stats("q2")["ready"], 0)

    def test_priorities_then_fifo(self):
        c = self.c
        plan = [("a", 0), ("b", 5), ("c", 0), ("d", -3), ("e", 5), ("f", 10), ("g", 0),
                ("h", -3), ("i", 1000), ("j", -1000), ("k", 5)]
        for tid, prio in plan:
            c.request("SUBMIT", name="p", id=tid, priority=prio)
        expected = [tid for tid, _ in sorted(plan, key=lambda p: -p[1])]  # stable: FIFO
        w = self.track(self.b.worker(credits=len(plan)))
        got = [w.task()["id"] for _ in plan]
        self.assertEqual(got, expected)

    def test_tasks_of_one_connection_are_fifo(self):
        c = self.c
        rids = [c.send("SUBMIT", name="t", id=f"f{i:03d}") for i in range(100)]
        for rid in rids:
            c.reply(rid)
        w = self.track(self.b.worker(credits=100))
        self.assertEqual([w.task()["id"] for _ in range(100)], [f"f{i:03d}" for i in range(100)])


class ScheduleTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker()
        self.c = self.track(self.b.client())

    def test_delay(self):
        w = self.track(self.b.worker(credits=2))
        t_send = time.monotonic()
        tid = self.c.request("SUBMIT", name="later", delay=300)["id"]
        g = self.c.request("GET", id=tid)
        self.assertEqual(g["state"], "scheduled")
        self.assertGreaterEqual(g["run_at"], g["created_at"] + 300)
        self.assertEqual(self.b.queue_stats("default")["scheduled"], 1)
        task = w.task(timeout=5)
        elapsed = time.monotonic() - t_send
        self.assertEqual(task["id"], tid)
        self.assertGreaterEqual(elapsed, 0.298, "dispatched before its delay")
        self.assertLess(elapsed, 0.3 + 1.0, "not dispatched within 1 s of its time")
        g = self.c.request("GET", id=tid)
        self.assertGreaterEqual(g["started_at"], g["created_at"] + 300)
        q = self.b.queue_stats("default")
        self.assertEqual((q["scheduled"], q["running"]), (0, 1))
        # run_at: "when scheduled or retrying" (PROTOCOL.md 5.2, GET).
        self.assertNotIn("run_at", g, "run_at reported for a running task")

    def test_run_at(self):
        w = self.track(self.b.worker(credits=3))
        run_at = now_ms() + 400
        tid = self.c.request("SUBMIT", name="at", run_at=run_at)["id"]
        g = self.c.request("GET", id=tid)
        self.assertEqual((g["state"], g["run_at"]), ("scheduled", run_at))
        # A past run_at means now.
        past = self.c.request("SUBMIT", name="past", run_at=now_ms() - 5000)["id"]
        self.assertEqual(w.task()["id"], past)
        task = w.task(timeout=5)
        received = now_ms()
        self.assertEqual(task["id"], tid)
        self.assertGreaterEqual(received, run_at, "dispatched before run_at")
        self.assertLess(received, run_at + 1000, "not dispatched within 1 s of run_at")

    def test_scheduled_tasks_keep_their_order(self):
        base = now_ms() + 300
        # Submitted in reverse: they become ready in run_at order.
        for i in reversed(range(5)):
            self.c.request("SUBMIT", name="s", id=f"s{i}", run_at=base + i * 20)
        w = self.track(self.b.worker(credits=5))
        self.assertEqual([w.task(timeout=5)["id"] for _ in range(5)], [f"s{i}" for i in range(5)])


class RetryAndDeadTest(BrokerTest):
    def test_retries_with_backoff_into_the_dead_set(self):
        b = self.start_broker("--retry-base", "50ms", "--tick", "10ms")
        c = self.track(b.client())
        w = self.track(b.worker(credits=10))
        tid = c.request("SUBMIT", name="flaky", max_retries=2, push_result=True)["id"]
        run_at = None
        for attempt in (1, 2, 3):
            task = w.task(timeout=5)
            got = now_ms()
            self.assertEqual((task["id"], task["attempt"]), (tid, attempt))
            if attempt > 1:
                self.assertGreaterEqual(got, run_at, "retried before its backoff ended")
                self.assertLess(got, run_at + 1000)
            before = now_ms()
            r = w.fail(tid, message=f"boom {attempt}")
            after = now_ms()
            if attempt < 3:
                self.assertEqual(r["outcome"], "retry")
                run_at = r["run_at"]
                # base * 2^(attempt-1), times a jitter in [0.5, 1).
                full = 50 * 2 ** (attempt - 1)
                self.assertGreaterEqual(run_at - before, full // 2 - 1, r)
                self.assertLessEqual(run_at - after, full, r)
                g = c.request("GET", id=tid)
                if g["state"] == "retrying":
                    self.assertEqual(g["run_at"], run_at)
                else:  # the backoff is short: it may be queued or running again
                    self.assertIn(g["state"], ("queued", "running"))
                self.assertEqual((g["error_code"], g["error"]), ("TASK_FAILED", f"boom {attempt}"))
            else:
                self.assertEqual(r["outcome"], "dead")
                self.assertNotIn("run_at", r)
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["attempt"], g["error_code"], g["error"]),
                         ("dead", 3, "TASK_FAILED", "boom 3"))
        self.assertIn("finished_at", g)
        res = c.push("RESULT")
        self.assertEqual((res["id"], res["state"], res["attempt"], res["error_code"], res["error"]),
                         (tid, "dead", 3, "TASK_FAILED", "boom 3"))
        q = b.queue_stats("default")
        self.assertEqual((q["dead"], q["failed"], q["retrying"], q["running"]), (1, 3, 0, 0))
        counters = b.counters()
        self.assertEqual((counters["failed"], counters["retried"], counters["buried"]), (3, 2, 1))
        dead = b.ctl().request("DEAD_LIST", queue="default")
        self.assertEqual(dead["total"], 1)
        self.assertEqual([t["id"] for t in dead["tasks"]], [tid])
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [], "a dead task was dispatched again")

    def test_retrying_state_while_the_backoff_runs(self):
        b = self.start_broker("--retry-base", "10m", "--retry-cap", "1h")
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t")["id"]
        w.task()
        before = now_ms()
        r = w.fail(tid, code="TIMEOUT", message="too slow")
        self.assertEqual(r["outcome"], "retry")
        self.assertGreaterEqual(r["run_at"], before + 300000 - 1)
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["run_at"], g["error_code"], g["error"]),
                         ("retrying", r["run_at"], "TIMEOUT", "too slow"))
        self.assertEqual(b.queue_stats("default")["retrying"], 1)

    def test_late_result_of_a_retrying_task_has_no_run_at(self):
        b = self.start_broker("--retry-base", "10m", "--retry-cap", "1h")
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t", push_result=True)["id"]
        w.task()
        self.assertEqual(w.fail(tid, message="slow")["outcome"], "retry")
        self.assertEqual(c.request("GET", id=tid)["state"], "retrying")
        waiting = self.track(b.client())
        rid = waiting.send("GET", id=tid, wait=10000)
        waiting.sync()  # the wait is registered
        # The result of the failed attempt still comes: it is stored, and
        # the task is no longer due to run again.
        self.assertEqual(w.ack(tid, result=b"late"), "stored")
        for view in (c.push("RESULT"), waiting.reply(rid)):
            self.assertEqual((view["id"], view["state"], view["result"]), (tid, "succeeded", b"late"))
            self.assertNotIn("run_at", view)
            self.assertNotIn("error_code", view)
        g = c.request("GET", id=tid)
        self.assertEqual(g["state"], "succeeded")
        self.assertNotIn("run_at", g)
        self.assertEqual(b.queue_stats("default")["retrying"], 0)

    def test_waiters_of_a_task_kept_for_no_time_get_its_result(self):
        b = self.start_broker()
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t", result_ttl=0, push_result=True)["id"]
        w.task()
        waiting = self.track(b.client())
        rid = waiting.send("GET", id=tid, wait=10000)
        waiting.sync()
        self.assertEqual(w.ack(tid, result=b"gone soon"), "stored")
        g = waiting.reply(rid)
        self.assertEqual((g["state"], g["result"]), ("succeeded", b"gone soon"))
        res = c.push("RESULT")
        self.assertEqual((res["id"], res["result"]), (tid, b"gone soon"))
        self.assertEqual(c.error_code("GET", id=tid), "NOT_FOUND")  # removed at once

    def test_waiters_of_a_cancelled_task_kept_for_no_time_get_its_outcome(self):
        b = self.start_broker()
        c = self.track(b.client())
        tid = c.request("SUBMIT", name="t", result_ttl=0, push_result=True, delay=600000)["id"]
        waiting = self.track(b.client())
        rid = waiting.send("GET", id=tid, wait=10000)
        waiting.sync()
        self.assertEqual(c.request("CANCEL", id=tid)["outcome"], "queued")
        self.assertEqual(waiting.reply(rid)["state"], "cancelled")
        res = c.push("RESULT")
        self.assertEqual((res["id"], res["state"]), (tid, "cancelled"))

    def test_dead_list_retry_purge(self):
        b = self.start_broker()
        c = self.track(b.client())
        a = self.track(b.admin())
        w = self.track(b.worker(queues=["dq", "other"], credits=4))
        for i in range(3):
            c.request("SUBMIT", queue="dq", name="t", id=f"d{i}", max_retries=0)
            self.assertEqual(w.task()["id"], f"d{i}")
            self.assertEqual(w.fail(f"d{i}", code="NO_HANDLER", message=f"no {i}")["outcome"],
                             "dead")
        c.request("SUBMIT", queue="other", name="t", id="o0")
        w.task()
        self.assertEqual(w.fail("o0", retryable=False)["outcome"], "dead")

        r = a.request("DEAD_LIST", queue="dq")
        self.assertEqual(r["total"], 3)
        self.assertEqual([t["id"] for t in r["tasks"]], ["d0", "d1", "d2"])
        for t in r["tasks"]:
            self.assertEqual((t["state"], t["queue"], t["error_code"], t["attempt"]),
                             ("dead", "dq", "NO_HANDLER", 1))
            self.assertNotIn("message", t)
            self.assertTrue(set(t) <= GET_KEYS - {"op", "rid", "message"}, t)
        page = a.request("DEAD_LIST", queue="dq", offset=1, limit=1)
        self.assertEqual((page["total"], [t["id"] for t in page["tasks"]]), (3, ["d1"]))
        self.assertEqual(a.request("DEAD_LIST", queue="dq", limit=0)["tasks"], [])
        self.assertEqual(a.error_code("DEAD_LIST", queue="dq", limit=1001), "BAD_REQUEST")
        empty = a.request("DEAD_LIST", queue="nothing-here")
        self.assertEqual((empty["total"], empty["tasks"]), (0, []))

        # DEAD_RETRY skips ids that are not dead tasks of that queue.
        self.assertEqual(a.request("DEAD_RETRY", queue="dq", ids=["d1", "o0", "nope"])["count"], 1)
        g = c.request("GET", id="d1")
        self.assertEqual((g["state"], g["attempt"]), ("queued", 0))
        w.credit(1)
        task = w.task()
        self.assertEqual((task["id"], task["attempt"]), ("d1", 1))
        self.assertEqual(w.ack("d1", b"ok"), "stored")
        # DEAD_PURGE deletes.
        self.assertEqual(a.request("DEAD_PURGE", queue="dq", ids=["d0", "d1"])["count"], 1)
        self.assertEqual(c.error_code("GET", id="d0"), "NOT_FOUND")
        self.assertEqual(a.request("DEAD_LIST", queue="dq")["total"], 1)
        # Without ids: every dead task of the queue.
        self.assertEqual(a.request("DEAD_RETRY", queue="dq")["count"], 1)
        self.assertEqual(c.request("GET", id="d2")["state"], "queued")
        self.assertEqual(a.request("DEAD_PURGE", queue="other")["count"], 1)
        self.assertEqual(c.error_code("GET", id="o0"), "NOT_FOUND")
        self.assertEqual(a.request("DEAD_PURGE", queue="other")["count"], 0)
        self.assertEqual(b.queue_stats("dq")["dead"], 0)


class AdminTest(BrokerTest):
    def test_pause_and_resume(self):
        b = self.start_broker()
        a = self.track(b.admin())
        c = self.track(b.client())
        self.assertEqual(set(a.request("PAUSE", queue="pq")), {"op", "rid"})
        a.request("PAUSE", queue="pq")  # idempotent
        self.assertTrue(b.queue_stats("pq")["paused"])
        w = self.track(b.worker(queues=["pq", "free"], credits=2))
        held = c.request("SUBMIT", queue="pq", name="t")["id"]  # a paused queue accepts
        probe = c.request("SUBMIT", queue="free", name="t")["id"]
        # The fetch that found the probe looked at the paused queue first.
        self.assertEqual(w.task()["id"], probe)
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [], "a task of a paused queue was dispatched")
        self.assertEqual(c.request("GET", id=held)["state"], "queued")
        a.request("RESUME", queue="pq")
        self.assertEqual(w.task()["id"], held)
        a.request("RESUME", queue="pq")
        self.assertFalse(b.queue_stats("pq")["paused"])

    def test_purge(self):
        b = self.start_broker("--retry-base", "10m")
        a = self.track(b.admin())
        c = self.track(b.client())
        w = self.track(b.worker(queues=["pg"], credits=2))
        c.request("SUBMIT", queue="pg", name="t", id="will-retry")
        c.request("SUBMIT", queue="pg", name="t", id="running")
        self.assertEqual({w.task()["id"], w.task()["id"]}, {"will-retry", "running"})
        self.assertEqual(w.fail("will-retry")["outcome"], "retry")
        for i in range(3):
            c.request("SUBMIT", queue="pg", name="t", id=f"q{i}", push_result=True)
        c.request("SUBMIT", queue="pg", name="t", id="sched", delay=600000)
        c.request("SUBMIT", queue="keep", name="t", id="elsewhere")
        c.request("SUBMIT", queue="keep", name="t", id="elsewhere-sched", delay=600000)
        self.assertEqual(a.request("PURGE", queue="pg")["count"], 5)
        for tid in ("will-retry", "q0", "q1", "q2", "sched"):
            self.assertEqual(c.error_code("GET", id=tid), "NOT_FOUND")
        self.assertEqual(c.request("GET", id="running")["state"], "running")
        self.assertEqual(c.request("GET", id="elsewhere")["state"], "queued")
        self.assertEqual(c.request("GET", id="elsewhere-sched")["state"], "scheduled")
        q = b.queue_stats("pg")
        self.assertEqual((q["ready"], q["scheduled"], q["retrying"], q["running"]), (0, 0, 0, 1))
        self.assertEqual(b.queue_stats("keep")["scheduled"], 1)
        self.assertEqual(a.request("PURGE", queue="pg")["count"], 0)
        # The queue works on; no RESULT is pushed for purged tasks.
        self.assertEqual(w.ack("running", b"r"), "stored")
        w.credit(1)
        new = c.request("SUBMIT", queue="pg", name="t")["id"]
        self.assertEqual(w.task()["id"], new)
        c.sync()
        self.assertEqual(c.take_pushes("RESULT"), [])


class CancelTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker("--retry-base", "10m")
        self.c = self.track(self.b.client())

    def test_cancel_waiting_tasks_never_run(self):
        c = self.c
        w = self.track(self.b.worker(credits=1))
        c.request("SUBMIT", name="t", id="retrying")
        self.assertEqual(w.task()["id"], "retrying")
        self.assertEqual(w.fail("retrying")["outcome"], "retry")  # backoff of 10 min
        c.request("SUBMIT", name="t", id="queued", push_result=True)  # no credit left
        c.request("SUBMIT", name="t", id="scheduled", delay=600000)
        for tid in ("retrying", "queued", "scheduled"):
            self.assertEqual(c.request("GET", id=tid)["state"], tid)
        for tid in ("queued", "scheduled", "retrying"):
            with self.subTest(tid=tid):
                r = c.request("CANCEL", id=tid)
                self.assertEqual((r["outcome"], r["state"]), ("queued", "cancelled"))
                g = c.request("GET", id=tid)
                self.assertEqual((g["state"], g["error_code"]), ("cancelled", "CANCELLED"))
                self.assertIn("finished_at", g)
        res = c.push("RESULT")
        self.assertEqual((res["id"], res["state"], res["error_code"]),
                         ("queued", "cancelled", "CANCELLED"))
        # Nothing cancelled is dispatched; a later task is.
        w.credit(5)
        probe = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(w.task()["id"], probe)
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [])
        q = self.b.queue_stats("default")
        self.assertEqual((q["ready"], q["scheduled"], q["retrying"], q["cancelled"]), (0, 0, 0, 3))

    def test_cancel_running_task(self):
        c = self.c
        w = self.track(self.b.worker(credits=1))
        tid = c.request("SUBMIT", name="long", push_result=True)["id"]
        self.assertEqual(w.task()["id"], tid)
        r = c.request("CANCEL", id=tid)
        self.assertEqual((r["outcome"], r["state"]), ("running", "cancelled"))
        push = w.push("CANCEL")
        self.assertEqual(push["id"], tid)
        self.assertNotIn("rid", push)
        self.assertEqual(c.request("GET", id=tid)["state"], "cancelled")
        res = c.push("RESULT")
        self.assertEqual((res["id"], res["state"]), (tid, "cancelled"))
        # The worker's late answers are duplicates and change nothing.
        self.assertEqual(w.ack(tid, b"too late"), "duplicate")
        self.assertEqual(w.fail(tid, code="CANCELLED")["outcome"], "duplicate")
        g = c.request("GET", id=tid)
        self.assertEqual((g["state"], g["error_code"]), ("cancelled", "CANCELLED"))
        self.assertNotIn("result", g)
        stats = self.b.stats()
        self.assertEqual(stats["counters"]["duplicates_dropped"], 2)
        self.assertEqual(stats["workers"][0]["running"], 0)
        self.assertEqual(self.b.queue_stats("default")["running"], 0)

    def test_cancel_final_task(self):
        c = self.c
        w = self.track(self.b.worker(credits=2))
        done = c.request("SUBMIT", name="t")["id"]
        w.task()
        w.ack(done, b"r")
        dead = c.request("SUBMIT", name="t", max_retries=0)["id"]
        w.task()
        w.fail(dead)
        for tid, state in ((done, "succeeded"), (dead, "dead")):
            r = c.request("CANCEL", id=tid)
            self.assertEqual((r["outcome"], r["state"]), ("final", state))
            self.assertEqual(c.request("GET", id=tid)["state"], state)
        self.assertEqual(c.request("GET", id=done)["result"], b"r")
        r = c.request("CANCEL", id=done)
        self.assertEqual(r["outcome"], "final")


class WaitAndPushTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker()
        self.c = self.track(self.b.client())

    def test_get_wait_answers_when_the_task_finishes(self):
        c = self.c
        tid = c.request("SUBMIT", name="t")["id"]
        other = self.track(self.b.client())
        rid = c.send("GET", id=tid, wait=30000)
        orid = other.send("GET", id=tid, wait=30000)
        # Replies are not held up by the waiting GET.
        c.sync()
        other.sync()
        self.assertFalse(c.has_reply(rid))
        self.assertFalse(other.has_reply(orid))
        w = self.track(self.b.worker(credits=1))
        w.task()
        self.assertEqual(w.ack(tid, b"answer"), "stored")
        t0 = time.monotonic()
        for conn, r in ((c, rid), (other, orid)):
            g = conn.reply(r, timeout=5)
            self.assertEqual((g["state"], g["result"]), ("succeeded", b"answer"))
        self.assertLess(time.monotonic() - t0, 2)
        # A final task is answered at once, wait or not.
        t0 = time.monotonic()
        self.assertEqual(c.request("GET", id=tid, wait=30000)["state"], "succeeded")
        self.assertLess(time.monotonic() - t0, 2)

    def test_get_wait_answers_with_the_current_state_when_it_ends(self):
        c = self.c
        tid = c.request("SUBMIT", name="t")["id"]
        t0 = time.monotonic()
        g = c.request("GET", id=tid, wait=300)
        elapsed = time.monotonic() - t0
        self.assertEqual(g["state"], "queued")
        # libevent timers run off the loop's cached clock: a few ms early is
        # within their precision.
        self.assertGreaterEqual(elapsed, 0.3 - TIMER_SLACK)
        self.assertLess(elapsed, 1.3)
        w = self.track(self.b.worker(credits=1))
        w.task()
        self.assertEqual(c.request("GET", id=tid, wait=200)["state"], "running")

    def test_get_wait_is_woken_by_a_cancel_racing_it(self):
        # GETs with a 30 s wait, each followed at once by a CANCEL of its
        # task from another connection: every GET must be answered when its
        # task is cancelled, not when its wait runs out.
        n = 1000
        c = self.c
        other = self.track(self.b.client())
        ids = c.request("SUBMIT_BATCH", name="t", tasks=[{} for _ in range(n)])["ids"]
        pending = set()
        for tid in ids:
            pending.add(c.send("GET", id=tid, wait=30000))
            other.send("CANCEL", id=tid)
        deadline = time.monotonic() + 10
        states = []
        try:
            while pending:
                m = c.pump(max(0.0, deadline - time.monotonic()))
                if m.get("rid") in pending:
                    pending.discard(m["rid"])
                    states.append(m.get("state"))
        except TimeoutError:
            pass
        self.assertEqual(len(pending), 0,
                         f"{len(pending)} of {n} GETs not woken by the cancel of their task")
        self.assertEqual(set(states), {"cancelled"})

    def test_get_wait_for_a_task_that_dies(self):
        c = self.c
        tid = c.request("SUBMIT", name="t", max_retries=0)["id"]
        rid = c.send("GET", id=tid, wait=30000)
        w = self.track(self.b.worker(credits=1))
        w.task()
        w.fail(tid, message="bad")
        g = c.reply(rid, timeout=5)
        self.assertEqual((g["state"], g["error"]), ("dead", "bad"))

    def test_push_result(self):
        c = self.c
        w = self.track(self.b.worker(credits=10))
        rid = c.send("SUBMIT", name="rpc", payload=b"in", push_result=True)
        task = w.task()
        self.assertEqual(w.ack(task["id"], b"out"), "stored")
        res = c.push("RESULT", timeout=5)
        self.assertIn(("OK", rid), c.arrivals)
        self.assertLess(c.arrivals.index(("OK", rid)), c.arrivals.index(("RESULT", None)),
                        "the RESULT came before the SUBMIT's reply")
        tid = c.reply(rid)["id"]
        self.assertEqual(res["id"], tid)
        self.assertEqual(set(res) - {"op", "id", "state", "attempt", "finished_at", "result",
                                     "error_code", "error"}, set())
        self.assertEqual((res["state"], res["attempt"], res["result"]), ("succeeded", 1, b"out"))
        self.assertNotIn("rid", res)
        # Only once, and only to the connection that asked.
        c.sync()
        self.assertEqual(c.take_pushes("RESULT"), [])

    def test_push_result_many_fast_tasks_reply_first(self):
        c = self.c
        w = self.track(self.b.worker(credits=1000))
        # A worker that answers at once: results race the SUBMIT replies.
        rids = [c.send("SUBMIT", name="rpc", payload=b"%d" % i, push_result=True)
                for i in range(100)]
        for _ in rids:
            t = w.task()
            w.send("ACK", id=t["id"], result=t["payload"])
        results = [c.push("RESULT", timeout=10) for _ in rids]
        for rid in rids:
            self.assertIn(("OK", rid), c.arrivals)
        order = {m: i for i, m in enumerate(c.arrivals)}
        ids = {}
        for rid in rids:
            ids[c.reply(rid)["id"]] = order[("OK", rid)]
        self.assertEqual(len(ids), 100)
        positions = [i for i, m in enumerate(c.arrivals) if m == ("RESULT", None)]
        for res, pos in zip(results, positions):
            self.assertLess(ids[res["id"]], pos, f"RESULT for {res['id']} before its SUBMIT reply")
            self.assertEqual(res["state"], "succeeded")

    def test_push_result_for_a_batch_and_a_duplicate(self):
        c = self.c
        w = self.track(self.b.worker(credits=10))
        rid = c.send("SUBMIT_BATCH", name="b", push_result=True,
                     tasks=[{"id": "pb1"}, {"id": "pb2"}])
        for _ in range(2):
            t = w.task()
            w.ack(t["id"], t["id"].encode())
        got = {c.push("RESULT")["id"] for _ in range(2)}
        self.assertEqual(got, {"pb1", "pb2"})
        self.assertLess(c.arrivals.index(("OK", rid)), c.arrivals.index(("RESULT", None)))
        # Resubmitting a final task with push_result: the RESULT follows at once.
        other = self.track(self.b.client())
        r = other.request("SUBMIT", name="b", id="pb1", push_result=True)
        self.assertTrue(r["duplicate"])
        res = other.push("RESULT", timeout=5)
        self.assertEqual((res["id"], res["state"], res["result"]), ("pb1", "succeeded", b"pb1"))


class ExpireTest(BrokerTest):
    """Finished tasks are deleted by the broker's expire script once their
    result ttl has run out (docs/STORAGE.md), not by Redis key expiry."""

    def test_finished_tasks_go_when_their_ttl_runs_out(self):
        r = self.start_redis()
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client())
        w = self.track(b.worker(credits=2))
        done = c.request("SUBMIT", name="t", id="done", result_ttl=300)["id"]
        kept = c.request("SUBMIT", name="t", id="kept", result_ttl=600000)["id"]
        cx = c.request("SUBMIT", name="t", id="cx", result_ttl=300, delay=600000)["id"]
        for t in (w.task(), w.task()):
            self.assertEqual(w.ack(t["id"], b"r"), "stored")
        c.request("CANCEL", id=cx)
        for tid in (done, kept, cx):
            self.assertEqual(r.command("PTTL", "{trident}:t:" + tid), "-1")  # no Redis TTL
        def gone(tid):
            return c.raw_reply(c.send("GET", id=tid)).get("code") == "NOT_FOUND"
        wait_for(lambda: gone(done), 10, "the result to expire")
        wait_for(lambda: gone(cx), 10, "the cancelled task to expire")
        self.assertEqual(c.request("GET", id=kept)["state"], "succeeded")
        self.assertEqual(b.stats()["counters"]["expired"], 2)
        # Only the second of the long-kept task is still listed.
        self.assertEqual(r.command("ZCARD", "{trident}:x"), "1")

    def test_tasks_of_two_ttls_acked_together_both_go(self):
        b = self.start_broker()
        c = self.track(b.client())
        w = self.track(b.worker(credits=2))
        # 1,000 and 1,001 ms fall in the same second of the lists (unless
        # they finish at x.999 s), and both ACKs go in one write, so one
        # ack call lists both.
        ids = [c.request("SUBMIT", name="t", result_ttl=ttl)["id"] for ttl in (1000, 1001)]
        self.assertEqual(sorted(t["id"] for t in w.tasks(2)), sorted(ids))
        data, rids = b"", []
        for tid in ids:
            w.rid += 1
            rids.append(w.rid)
            data += frame({"op": "ACK", "rid": w.rid, "id": tid, "result": b"r"})
        w.send_raw(data)
        for rid in rids:
            self.assertEqual(w.reply(rid)["outcome"], "stored")
        for tid in ids:
            wait_for(lambda: c.raw_reply(c.send("GET", id=tid)).get("code") == "NOT_FOUND", 10,
                     f"task {tid} to expire")
        self.assertEqual(b.stats()["counters"]["expired"], 2)

    def test_a_listed_task_is_deleted_only_when_its_time_is_up(self):
        r = self.start_redis()
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client())
        w = self.track(b.worker(queues=["eq"], credits=2))
        c.request("SUBMIT", queue="eq", name="t", id="again", result_ttl=600000)
        c.request("SUBMIT", queue="eq", name="t", id="dead", max_retries=0)
        self.assertEqual(w.ack(w.task()["id"], b"r"), "stored")
        w.fail(w.task()["id"], retryable=False)
        # A second long past lists a task finished just now (as when one
        # deleted early was submitted again under its id), a dead task and
        # one that does not exist.
        r.command("RPUSH", "{trident}:x:1", "again", "dead", "nosuch")
        r.command("ZADD", "{trident}:x", 1, 1)
        wait_for(lambda: r.command("EXISTS", "{trident}:x:1") == "0", 10, "the list to be read")
        wait_for(lambda: r.command("ZSCORE", "{trident}:x", 1) == "", 10, "the second to go")
        self.assertEqual(c.request("GET", id="again")["state"], "succeeded")
        self.assertEqual(c.request("GET", id="dead")["state"], "dead")
        self.assertEqual(b.stats()["counters"]["expired"], 0)


class StatsInfoTest(BrokerTest):
    def setUp(self):
        self.b = self.start_broker("--retry-base", "10m")

    def test_stats(self):
        b = self.b
        c = self.track(b.client(client="statsy"))
        w = self.track(b.worker(queues=["s1", "s2"], capacity=7, credits=3, worker_id="wk-1"))
        for i in range(3):
            c.request("SUBMIT", queue="s1", name="t", id=f"r{i}")
        got = [w.task()["id"] for _ in range(3)]
        w.ack(got[0], b"ok")
        w.fail(got[1])                      # retrying
        w.fail(got[2], retryable=False)     # dead
        c.request("SUBMIT", queue="s1", name="t", id="ready1")
        c.request("SUBMIT", queue="s1", name="t", id="sched1", delay=600000)
        c.request("SUBMIT", queue="s1", name="t", id="cx")
        c.request("CANCEL", id="cx")
        w.credit(1)
        self.assertEqual(w.task()["id"], "ready1")   # running
        c.error("GET", id="missing")
        c.error("SUBMIT")
        stats = b.stats()
        qs = {q["name"]: q for q in stats["queues"]}
        s1 = qs["s1"]
        self.assertEqual({k: s1[k] for k in ("ready", "scheduled", "running", "retrying", "dead",
                                             "succeeded", "failed", "cancelled", "paused")},
                         {"ready": 0, "scheduled": 1, "running": 1, "retrying": 1, "dead": 1,
                          "succeeded": 1, "failed": 2, "cancelled": 1, "paused": False})
        self.assertEqual(len(stats["workers"]), 1)
        wk = stats["workers"][0]
        self.assertEqual({k: wk[k] for k in ("worker_id", "client", "host", "pid", "queues",
                                             "capacity", "credits", "running")},
                         {"worker_id": "wk-1", "client": "tridentlib-worker", "host": "testhost",
                          "pid": os.getpid(), "queues": ["s1", "s2"], "capacity": 7,
                          "credits": 0, "running": 1})
        self.assertEqual(stats["errors"].get("NOT_FOUND"), 1)
        self.assertEqual(stats["errors"].get("BAD_REQUEST"), 1)
        k = stats["counters"]
        self.assertEqual({n: k[n] for n in ("submitted", "dispatched", "acked", "failed", "retried",
                                            "buried", "duplicates_dropped")},
                         {"submitted": 6, "dispatched": 4, "acked": 1, "failed": 2, "retried": 1,
                          "buried": 1, "duplicates_dropped": 0})
        self.assertGreater(k["redis_calls"], 0)
        # A queue nobody used reports zeros.
        z = b.queue_stats("never-used")
        self.assertEqual([z[k] for k in ("ready", "scheduled", "running", "dead", "succeeded")],
                         [0] * 5)
        self.assertEqual(b.stats("s1")["queues"][0]["name"], "s1")
        self.assertEqual([q["name"] for q in b.stats("s1")["queues"]], ["s1"])

    def test_stats_of_one_queue_lists_only_its_workers(self):
        b = self.b
        self.track(b.worker(queues=["a"], worker_id="wa"))
        self.track(b.worker(queues=["b", "a"], worker_id="wab"))
        self.track(b.worker(queues=["c"], worker_id="wc"))
        self.assertEqual(sorted(w["worker_id"] for w in b.stats()["workers"]), ["wa", "wab", "wc"])
        self.assertEqual(sorted(w["worker_id"] for w in b.stats("a")["workers"]), ["wa", "wab"])
        self.assertEqual([w["worker_id"] for w in b.stats("c")["workers"]], ["wc"])

    def test_stats_counts_task_error_codes(self):
        # "For task error codes: attempts that ended with that code, as
        # recorded by this broker" (PROTOCOL.md 5.2, STATS errors).
        b = self.b
        c = self.track(b.client())
        w = self.track(b.worker(credits=10))
        for code in ("TASK_FAILED", "TASK_FAILED", "TIMEOUT", "NO_HANDLER"):
            tid = c.request("SUBMIT", name="t")["id"]
            w.task()
            w.fail(tid, code=code, retryable=False)
        tid = c.request("SUBMIT", name="t")["id"]
        w.task()
        c.request("CANCEL", id=tid)
        errors = b.errors()
        self.assertEqual({k: errors.get(k) for k in ("TASK_FAILED", "TIMEOUT", "NO_HANDLER")},
                         {"TASK_FAILED": 2, "TIMEOUT": 1, "NO_HANDLER": 1})

    def test_info(self):
        b = self.b
        c = self.track(b.client(client="infoy"))
        info = c.request("INFO")["info"]
        self.assertEqual(info["version"], "0.1.0")
        self.assertEqual(info["node"], c.hello_reply["node"])
        self.assertEqual(c.hello_reply["server"], "tridentd 0.1.0")
        self.assertEqual(info["pid"], b.proc.pid)
        self.assertGreaterEqual(info["connections"], 1)
        self.assertEqual(info["redis"]["mode"], "embedded")
        self.assertIs(info["redis"]["connected"], True)
        self.assertIsInstance(info["redis"]["address"], str)
        self.assertEqual(info["limits"]["max_frame"], c.hello_reply["max_frame"])
        self.assertEqual(info["limits"]["max_payload"], c.hello_reply["max_payload"])
        self.assertEqual(info["limits"]["max_connections"], 10000)
        wait_for_later = info["uptime_ms"]
        self.assertGreaterEqual(c.request("INFO")["info"]["uptime_ms"], wait_for_later)
        ping = c.request("PING")
        self.assertLessEqual(abs(ping["time"] - now_ms()), 2000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
