#!/usr/bin/python3
"""tridentd integration tests: failures and shutdown.

Real processes only: tridentd with an external redis-server that is killed
and restarted (UNAVAILABLE meanwhile, reconnect, AOF keeps acknowledged
tasks); SIGTERM drains (DRAINING, SHUTDOWN pushes, in-flight replies, exit
0); tridentd killed with -9 and restarted on its data directory (nothing
lost); two tridentd on one Redis (dispatch, waits, results and cancels
across brokers); SIGHUP reopens the log.

    TRIDENT_BUILD=build /usr/bin/python3 test_broker_faults.py [-k pattern]
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tridentlib import (BrokerTest, Client, ProtocolError, binary, free_port,  # noqa: E402
                        wait_for)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def answered_within(conn, rids, seconds):
    """How many of the requests rids get a reply within seconds."""
    deadline = time.monotonic() + seconds
    got = 0
    pending = set(rids)
    try:
        while pending:
            m = conn.pump(max(0.0, deadline - time.monotonic()))
            if m.get("rid") in pending:
                pending.discard(m["rid"])
                got += 1
    except TimeoutError:
        pass
    return got


class RedisDownTest(BrokerTest):
    def test_unavailable_while_redis_is_down_then_reconnect_with_aof(self):
        r = self.start_redis(appendfsync="always")
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client(client="c"))
        a = self.track(b.admin())
        w = self.track(b.worker(queues=["rq"]))
        self.assertEqual(c.request("INFO")["info"]["redis"]["mode"], "external")
        acked = [c.request("SUBMIT", queue="rq", name="t", id=f"kept{i}",
                           payload=b"p%d" % i)["id"] for i in range(3)]
        c.request("SUBMIT", queue="rq", name="t", id="kept-later", delay=600000)

        r.kill()
        wait_for(lambda: c.request("INFO")["info"]["redis"]["connected"] is False, 10,
                 "the broker to notice Redis is gone")
        requests = [
            (c, "SUBMIT", {"queue": "rq", "name": "t", "id": "during"}),
            (c, "SUBMIT_BATCH", {"tasks": [{"name": "t", "id": "during-b"}]}),
            (c, "GET", {"id": "kept0"}),
            (c, "GET", {"id": "kept0", "wait": 5000}),
            (c, "CANCEL", {"id": "kept0"}),
            (c, "STATS", {}),
            (a, "PAUSE", {"queue": "rq"}),
            (a, "PURGE", {"queue": "rq"}),
            (a, "DEAD_LIST", {"queue": "rq"}),
            (w, "ACK", {"id": "kept0"}),
            (w, "FAIL", {"id": "kept0"}),
            (w, "HEARTBEAT", {"running": ["kept0"]}),
            (w, "PROGRESS", {"id": "kept0", "progress": 5}),
        ]
        for conn, op, fields in requests:
            with self.subTest(op=op):
                t0 = time.monotonic()
                err = conn.error(op, **fields)
                self.assertEqual(err["code"], "UNAVAILABLE", err)
                self.assertLess(time.monotonic() - t0, 1.0, "UNAVAILABLE must come at once")
        # What needs no Redis still works, and nobody was disconnected.
        for conn in (c, a, w):
            self.assertTrue(conn.is_open())
        self.assertGreaterEqual(a.request("INFO")["info"]["connections"], 3)

        r.start()  # same port, same directory: its AOF is loaded

        def up():
            try:
                return c.request("STATS")
            except ProtocolError as e:
                self.assertEqual(e.code, "UNAVAILABLE")
                return None
        wait_for(up, 20, "the broker to reconnect to Redis")
        self.assertTrue(c.request("INFO")["info"]["redis"]["connected"])
        for tid in acked:
            self.assertEqual(c.request("GET", id=tid)["state"], "queued")
        self.assertEqual(c.request("GET", id="kept-later")["state"], "scheduled")
        for tid in ("during", "during-b"):
            self.assertEqual(c.error_code("GET", id=tid), "NOT_FOUND")
        self.assertFalse(b.queue_stats("rq")["paused"])
        # The worker that stayed connected gets the tasks.
        w.credit(3)
        got = sorted(w.task(timeout=10)["payload"] for _ in acked)
        self.assertEqual(got, [b"p0", b"p1", b"p2"])
        self.assertGreaterEqual(b.errors().get("UNAVAILABLE", 0), len(requests))


    def test_worker_credit_given_during_the_outage_is_used_after(self):
        r = self.start_redis(appendfsync="always")
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client())
        w = self.track(b.worker(queues=["rq"]))
        tid = c.request("SUBMIT", queue="rq", name="t")["id"]
        r.kill()
        wait_for(lambda: c.request("INFO")["info"]["redis"]["connected"] is False, 10,
                 "the broker to notice Redis is gone")
        w.credit(1)  # a worker stays connected and keeps crediting its free slots
        r.start()
        wait_for(lambda: c.request("INFO")["info"]["redis"]["connected"], 20, "the reconnect")
        self.assertEqual(w.task(timeout=10)["id"], tid)


class StorageErrorTest(BrokerTest):
    def test_unexpected_redis_reply_is_internal(self):
        r = self.start_redis()
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client())
        # A task key of the wrong type: the scripts get an error from Redis.
        r.command("SET", "{trident}:t:broken", "not a hash")
        for op in ("GET", "CANCEL"):
            with self.subTest(op=op):
                err = c.error(op, id="broken")
                self.assertEqual(err["code"], "INTERNAL", err)
                self.assertNotIn("WRONGTYPE", err["message"], "Redis internals leak to clients")
        self.assertTrue(c.is_open())
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(c.request("GET", id=tid)["state"], "queued")
        self.assertEqual(b.errors().get("INTERNAL"), 2)
        self.assertIn("WRONGTYPE", b.log_text())  # logged for the operator


class DrainTest(BrokerTest):
    def test_sigterm_drains(self):
        b = self.start_broker("--queue-limit", "small:1", "--grace", "30s")
        c1 = self.track(b.client(client="waiting-submitter"))
        c2 = self.track(b.client(client="late-submitter"))
        raw = self.track(Client(b.port))  # open before SIGTERM, says HELLO after
        w = self.track(b.worker(queues=["other"]))
        queued = c2.request("SUBMIT", queue="other", name="t")["id"]
        c1.request("SUBMIT", queue="small", name="t")
        rid = c1.send("SUBMIT", queue="small", name="t", wait=1500)  # waits for room
        c1.request("GET", id=queued)  # through Redis: the SUBMIT is waiting now
        self.assertFalse(c1.has_reply(rid))

        b.signal(signal.SIGTERM)
        shutdown = w.push("SHUTDOWN", timeout=5)
        self.assertNotIn("rid", shutdown)
        # New submissions and workers: DRAINING; reads are still served.
        self.assertEqual(c2.error_code("SUBMIT", queue="other", name="t"), "DRAINING")
        self.assertEqual(c2.error_code("SUBMIT_BATCH", tasks=[{"name": "t"}]), "DRAINING")
        self.assertEqual(c2.request("GET", id=queued)["state"], "queued")
        err = raw.error("HELLO", version=1, role="worker", worker_id="late", queues=["other"],
                        capacity=1)
        self.assertEqual(err["code"], "DRAINING")
        # Workers are told to stop taking tasks: a credit brings none.
        w.credit(5)
        w.sync()
        self.assertEqual(w.take_pushes("TASK"), [])
        # The waiting SUBMIT still gets its reply, then the broker exits 0,
        # long before the grace period.
        t0 = time.monotonic()
        reply = c1.raw_reply(rid, timeout=10)
        self.assertEqual(reply["op"], "ERROR")
        self.assertIn(reply["code"], ("QUEUE_FULL", "DRAINING"))
        self.assertEqual(b.wait(timeout=15), 0)
        self.assertLess(time.monotonic() - t0, 10)
        b.check_clean()
        self.assertIn("drained", b.log_text())

    def test_sigterm_answers_outstanding_requests_and_takes_results(self):
        # SHUTDOWN: "its outstanding requests are still answered"; a worker
        # "finishes (ACK or FAIL) what it runs" (PROTOCOL.md 5.5).
        b = self.start_broker("--grace", "30s")
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t", push_result=True)["id"]
        self.assertEqual(w.task()["id"], tid)
        get = c.send("GET", id=tid, wait=60000)
        c.sync()
        self.assertFalse(c.has_reply(get))

        b.signal(signal.SIGTERM)
        w.push("SHUTDOWN", timeout=5)
        self.assertEqual(c.error_code("SUBMIT", name="t"), "DRAINING")
        # The task takes another half second to finish; the broker waits for
        # it (and for the GET) and keeps the worker's connection.
        try:
            m = w.read_frame(timeout=0.5)
            self.fail("the broker closed the connection of a worker running a task" if m is None
                      else f"unexpected frame {m}")
        except TimeoutError:
            pass
        self.assertEqual(w.ack(tid, b"finished while draining"), "stored")
        g = c.reply(get, timeout=10)
        self.assertEqual((g["state"], g["result"]), ("succeeded", b"finished while draining"))
        self.assertEqual(c.push("RESULT", timeout=10)["state"], "succeeded")
        self.assertEqual(b.wait(timeout=20), 0)
        b.check_clean()

    def test_sigterm_with_nothing_owed_exits_at_once(self):
        b = self.start_broker("--grace", "30s")
        w = self.track(b.worker(credits=1))
        c = self.track(b.client())
        c.request("PING")
        t0 = time.monotonic()
        b.signal(signal.SIGINT)  # SIGINT drains like SIGTERM
        frames = w.expect_close(timeout=10)
        self.assertEqual([f["op"] for f in frames], ["SHUTDOWN"])
        self.assertEqual(b.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 5)
        b.check_clean()


class BusyPollTest(BrokerTest):
    def test_busy_poll_serves_and_stops_cleanly(self):
        b = self.start_broker("--busy-poll", "500")
        c = self.track(b.client())
        w = self.track(b.worker(credits=100))
        ids = [c.request("SUBMIT", name="t", payload=b"%d" % i, push_result=True)["id"]
               for i in range(50)]
        for t in w.tasks(50):
            w.ack(t["id"], result=t["payload"])
        results = {}
        while len(results) < 50:
            r = c.push("RESULT")
            results[r["id"]] = r["result"]
        self.assertEqual(results, {tid: b"%d" % i for i, tid in enumerate(ids)})
        # After a quiet spell (the loop asleep), a request still wakes it.
        self.assertEqual(c.request("GET", id=ids[0])["state"], "succeeded")
        self.assertEqual(b.terminate(timeout=10), 0)
        b.check_clean()


class RestartTest(BrokerTest):
    def test_kill_9_and_restart_loses_nothing(self):
        b = self.start_broker("--lease", "1s", "--tick", "20ms")
        c = self.track(b.client())
        running = [c.request("SUBMIT", name="t", id=f"run{i}")["id"] for i in range(2)]
        w = self.track(b.worker(credits=2))
        self.assertEqual(sorted(t["id"] for t in w.tasks(2)), running)
        queued = [c.request("SUBMIT", name="t", id=f"q{i}", payload=b"x" * i)["id"]
                  for i in range(3)]
        c.request("SUBMIT", name="t", id="sched", delay=600000)
        dead = c.request("SUBMIT", name="t", id="dead", max_retries=0, queue="dq")["id"]
        wd = self.track(b.worker(queues=["dq"], credits=1))
        wd.task()
        wd.fail(dead)

        b.kill()
        self.assertEqual(w.expect_close(timeout=10), [])
        b.start()  # same port and data directory; the embedded Redis loads its AOF
        c = self.track(b.client())
        for tid in queued:
            self.assertEqual(c.request("GET", id=tid)["state"], "queued")
        self.assertEqual(c.request("GET", id="sched")["state"], "scheduled")
        self.assertEqual(c.request("GET", id="dead")["state"], "dead")
        for tid in running:
            self.assertIn(c.request("GET", id=tid)["state"], ("running", "queued"))
        # The in-flight tasks come back when their lease runs out.
        w2 = self.track(b.worker(credits=10))
        got = {t["id"]: t for t in w2.tasks(5, timeout=10)}
        self.assertEqual(set(got), set(running) | set(queued))
        self.assertEqual([got[tid]["attempt"] for tid in running], [2, 2])
        self.assertEqual([got[tid]["attempt"] for tid in queued], [1, 1, 1])
        self.assertEqual([got[tid]["payload"] for tid in queued], [b"", b"x", b"xx"])
        self.assertEqual(c.request("GET", id="run0")["error_code"], "WORKER_LOST")
        w2.sync()
        self.assertEqual(w2.take_pushes("TASK"), [])


class LayoutTest(BrokerTest):
    """The key layout version in {P}:layout (docs/STORAGE.md)."""

    def test_layout_1_ready_sets_move_to_lists_in_order(self):
        r = self.start_redis()
        # What a tridentd of layout 1 left: one ready sorted set per queue,
        # scored (1000 - priority) * 2^41 + 2^40 + seq, and 2^40 - n for a
        # task requeued at the front.
        def score(prio, seq):
            return (1000 - prio) * 2**41 + 2**40 + seq
        old = [("lo1", 0, score(0, 1)), ("hi1", 5, score(5, 2)), ("lo2", 0, score(0, 3)),
               ("front", 0, score(0, -2**40 + 1) - 1), ("hi2", 5, score(5, 4))]
        for tid, prio, sc in old:
            r.command("HSET", "{trident}:t:" + tid, "q", "uq", "n", "t", "p", "pay-" + tid,
                      "pr", prio, "a", 0, "mr", 3, "to", 0, "ttl", 60000, "c", 1, "s", "queued")
            r.command("ZADD", "{trident}:q:uq:ready", sc, tid)
        r.command("SADD", "{trident}:queues", "uq")
        r.command("HSET", "{trident}:q:uq:m", "seq", 4, "front", 1)

        b = self.start_broker(redis_url=r.url())
        self.assertEqual(r.command("GET", "{trident}:layout"), "3")
        self.assertEqual(r.command("EXISTS", "{trident}:q:uq:ready"), "0")
        self.assertEqual(r.command("HEXISTS", "{trident}:q:uq:m", "seq"), "0")
        self.assertEqual(b.queue_stats("uq")["ready"], 5)
        w = self.track(b.worker(queues=["uq"], credits=5))
        got = w.tasks(5)
        self.assertEqual([t["id"] for t in got], ["hi1", "hi2", "front", "lo1", "lo2"])
        self.assertEqual([t["payload"] for t in got][:1], [b"pay-hi1"])
        for t in got:
            w.ack(t["id"], result=b"r-" + t["id"].encode())
        c = self.track(b.client())
        for tid, _, _ in old:
            v = c.request("GET", id=tid, wait=5000)
            self.assertEqual((v["state"], v["result"]), ("succeeded", b"r-" + tid.encode()))

    def test_a_newer_layout_is_refused_until_it_is_fixed(self):
        r = self.start_redis(appendfsync="always")
        b = self.start_broker(redis_url=r.url())
        c = self.track(b.client())
        c.request("SUBMIT", name="t", id="before")
        r.command("SET", "{trident}:layout", 4)
        r.kill()
        r.start()
        wait_for(lambda: "has key layout 4" in b.log_text(), 20, "the layout error in the log")
        self.assertIn("this tridentd knows layouts up to 3", b.log_text())
        self.assertEqual(c.error_code("GET", id="before"), "UNAVAILABLE")
        r.command("SET", "{trident}:layout", 3)
        wait_for(lambda: not _unavailable(c), 20, "the broker to serve again")
        self.assertEqual(c.request("GET", id="before")["state"], "queued")


class RefusedSetupTest(BrokerTest):
    def test_a_refused_select_runs_nothing_in_another_db(self):
        r = self.start_redis()
        port = free_port()
        d = tempfile.mkdtemp(prefix="trident-refused-")
        self.addCleanup(shutil.rmtree, d, True)
        log = os.path.join(d, "tridentd.log")
        with open(log, "wb") as f:
            p = subprocess.Popen([binary("server/tridentd"), "--listen", f"127.0.0.1:{port}",
                                  "--redis", f"redis://127.0.0.1:{r.port}/99"],
                                 stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)
        wait_for(lambda: "connection setup failed" in read(log), 20, "the SELECT error")
        self.assertIn("DB index is out of range", read(log))
        c = self.track(Client(port, hello={"role": "client"}))
        self.assertEqual(c.error_code("STATS"), "UNAVAILABLE")
        # Nothing ran in db 0 meanwhile: no layout key, no scripts' writes.
        self.assertEqual(r.command("DBSIZE"), "0")
        self.assertNotIn("data layout", read(log))


def _unavailable(c):
    try:
        c.request("GET", id="before")
        return False
    except ProtocolError as e:
        if e.code != "UNAVAILABLE":
            raise
        return True


class ResyncTest(BrokerTest):
    def test_waiters_are_answered_when_the_subscription_is_back(self):
        # b1 reaches Redis as a user whose channel access can be taken away:
        # while it cannot subscribe, the P:done message of an ack through b2
        # never reaches it; once it can, it reads the tasks it waits for.
        r = self.start_redis()
        r.command("ACL", "SETUSER", "tb", "on", ">pw", "~*", "&*", "+@all")
        b1 = self.start_broker(redis_url=f"redis://tb:pw@127.0.0.1:{r.port}/0")
        b2 = self.start_broker(redis_url=r.url())
        c = self.track(b1.client())
        w = self.track(b2.worker(queues=["rs"], credits=1))
        tid = c.request("SUBMIT", queue="rs", name="t", push_result=True)["id"]
        get = c.send("GET", id=tid, wait=60000)
        c.sync()
        self.assertEqual(w.task(timeout=5)["id"], tid)
        r.command("ACL", "SETUSER", "tb", "resetchannels")  # closes its subscriber
        # It tries again with a growing pause (0.1, 0.2, 0.4, 0.8 s...), not
        # ten times a second: four refusals take at least 1.4 s.
        def refusals():
            return b1.log_text().count("NOPERM")
        wait_for(lambda: refusals() >= 1, 10, "b1's subscribing to be refused")
        first = time.monotonic()
        wait_for(lambda: refusals() >= 4, 20, "three more refusals")
        self.assertGreaterEqual(time.monotonic() - first, 1.0)
        self.assertEqual(w.ack(tid, b"while away"), "stored")
        c.sync()
        self.assertFalse(c.has_reply(get))
        r.command("ACL", "SETUSER", "tb", "allchannels")
        g = c.reply(get, timeout=20)
        self.assertEqual((g["state"], g["result"]), ("succeeded", b"while away"))
        res = c.push("RESULT", timeout=5)
        self.assertEqual((res["id"], res["result"]), (tid, b"while away"))


class TwoBrokersTest(BrokerTest):
    def setUp(self):
        self.r = self.start_redis()
        self.b1 = self.start_broker(redis_url=self.r.url())
        self.b2 = self.start_broker(redis_url=self.r.url())
        self.assertNotEqual(self.b1.info()["node"], self.b2.info()["node"])

    def test_task_submitted_through_one_runs_on_the_other(self):
        c = self.track(self.b1.client())
        w = self.track(self.b2.worker(queues=["x"], credits=5))
        tid = c.request("SUBMIT", queue="x", name="t", payload=b"across", push_result=True)["id"]
        t = w.task(timeout=5)
        self.assertEqual((t["id"], t["payload"]), (tid, b"across"))
        get = c.send("GET", id=tid, wait=30000)
        c.sync()
        self.assertFalse(c.has_reply(get))
        self.assertEqual(w.ack(tid, b"done on b2"), "stored")
        g = c.reply(get, timeout=5)
        self.assertEqual((g["state"], g["result"]), ("succeeded", b"done on b2"))
        res = c.push("RESULT", timeout=5)
        self.assertEqual((res["id"], res["result"]), (tid, b"done on b2"))
        # The other way round: submitted on b2, waited for on b1.
        c2 = self.track(self.b2.client())
        w1 = self.track(self.b1.worker(queues=["y"], credits=1))
        tid2 = c2.request("SUBMIT", queue="y", name="t")["id"]
        get = c.send("GET", id=tid2, wait=30000)
        self.assertEqual(w1.task(timeout=5)["id"], tid2)
        w1.fail(tid2, retryable=False, message="nope")
        self.assertEqual(c.reply(get, timeout=5)["state"], "dead")
        # Both brokers report the same queues.
        for b in (self.b1, self.b2):
            q = b.queue_stats("x")
            self.assertEqual((q["succeeded"], q["ready"]), (1, 0))

    def test_a_task_kept_for_no_time_still_reaches_its_waiters_on_the_other(self):
        c = self.track(self.b1.client())
        w = self.track(self.b2.worker(queues=["z"], credits=1))
        tid = c.request("SUBMIT", queue="z", name="t", result_ttl=0, push_result=True)["id"]
        get = c.send("GET", id=tid, wait=30000)
        c.sync()
        self.assertEqual(w.task(timeout=5)["id"], tid)
        self.assertEqual(w.ack(tid, b"brief"), "stored")
        res = c.push("RESULT", timeout=5)
        self.assertEqual((res["id"], res["state"], res["result"]), (tid, "succeeded", b"brief"))
        g = c.reply(get, timeout=5)
        self.assertEqual((g["state"], g["result"]), ("succeeded", b"brief"))
        # Kept only for its waiters: listed to be deleted (in about a minute).
        seconds = self.r.command("ZRANGE", "{trident}:x", 0, -1).split()
        self.assertEqual(len(seconds), 1)
        self.assertEqual(self.r.command("LRANGE", "{trident}:x:" + seconds[0], 0, -1), tid)
        # A stale entry in a second long past does not cut that minute short.
        self.r.command("RPUSH", "{trident}:x:1", tid)
        self.r.command("ZADD", "{trident}:x", 1, 1)
        wait_for(lambda: self.r.command("ZSCORE", "{trident}:x", 1) == "", 10, "the entry read")
        self.assertEqual(c.request("GET", id=tid)["state"], "succeeded")

    def test_get_wait_across_brokers_is_never_missed(self):
        # Many GETs with a wait on b1 whose tasks finish through b2 right
        # after: each must be answered when its task finishes, not when its
        # wait runs out (30 s).
        n = 1000
        c = self.track(self.b1.client())
        w = self.track(self.b2.worker(queues=["race"], credits=n))
        ids = c.request("SUBMIT_BATCH", queue="race", name="t", tasks=[{} for _ in range(n)])["ids"]
        for _ in range(n):
            w.task()
        rids = set()
        for tid in ids:
            rids.add(c.send("GET", id=tid, wait=30000))
            w.send("ACK", id=tid, result=b"r")
        self.assertEqual(answered_within(c, rids, 10), n)

    def test_cancel_reaches_a_worker_on_the_other_broker(self):
        c = self.track(self.b1.client())
        w = self.track(self.b2.worker(queues=["z"], credits=1))
        tid = c.request("SUBMIT", queue="z", name="t")["id"]
        w.task(timeout=5)
        r = c.request("CANCEL", id=tid)
        self.assertEqual(r["outcome"], "running")
        self.assertEqual(w.push("CANCEL", timeout=5)["id"], tid)
        self.assertEqual(w.fail(tid, code="CANCELLED")["outcome"], "duplicate")

    def test_no_double_dispatch_across_brokers(self):
        c1 = self.track(self.b1.client())
        c2 = self.track(self.b2.client())
        w1 = self.track(self.b1.worker(queues=["m"], credits=100))
        w2 = self.track(self.b2.worker(queues=["m"], credits=100))
        ids = set()
        for i in range(50):
            ids.add(c1.request("SUBMIT", queue="m", name="t")["id"])
            ids.add(c2.request("SUBMIT", queue="m", name="t")["id"])
        seen = []

        def all_seen():
            for w in (w1, w2):
                w.sync()
                seen.extend(t["id"] for t in w.take_pushes("TASK"))
            return len(seen) >= 100
        wait_for(all_seen, 20, "100 tasks")
        self.assertEqual(sorted(seen), sorted(ids), "a task was lost or dispatched twice")


class SignalTest(BrokerTest):
    def test_sighup_reopens_the_log(self):
        b = self.start_broker()
        logfile = os.path.join(b.dir, "own.log")
        b.terminate()
        b.args += ["--log-file", logfile]
        b.start()
        c = self.track(b.client())
        c.request("PING")
        os.rename(logfile, logfile + ".1")
        b.signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(logfile), 10, "the log to be reopened")
        c.request("SUBMIT", name="after-hup")
        wait_for(lambda: "SUBMIT" in read(logfile), 10, "a request logged in the new file")
        self.assertIn("SIGHUP", read(logfile + ".1"))

    def test_sighup_applies_a_new_log_file_from_the_config(self):
        b = self.start_broker()
        first, second = os.path.join(b.dir, "first.log"), os.path.join(b.dir, "second.log")
        conf = os.path.join(b.dir, "tridentd.conf")
        with open(conf, "w") as f:
            f.write(f"log-file = {first}\n")
        b.terminate()
        b.args += ["--config", conf]
        b.start()
        c = self.track(b.client())
        c.request("PING")
        with open(conf, "w") as f:
            f.write(f"log-file = {second}  # moved\n")
        b.signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(second), 10, "the new log file")
        c.request("SUBMIT", name="after-hup")
        wait_for(lambda: "SUBMIT" in read(second), 10, "a request logged in the new file")
        self.assertNotIn("<- SUBMIT", read(first))


class SentinelTest(BrokerTest):
    def start_sentinel(self, master_port):
        d = tempfile.mkdtemp(prefix="trident-sentinel-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        conf = os.path.join(d, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                    f"sentinel monitor m 127.0.0.1 {master_port} 1\n"
                    "sentinel down-after-milliseconds m 500\n"
                    "sentinel failover-timeout m 3000\n")
        proc = subprocess.Popen(["redis-server", conf, "--sentinel"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            proc.wait(timeout=10)
        self.addCleanup(stop)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True,
                                        text=True).stdout.strip() == "PONG", 10, "the sentinel")
        return port

    def test_follows_the_master_through_a_failover(self):
        master = self.start_redis()
        replica = self.start_redis()
        replica.command("REPLICAOF", "127.0.0.1", master.port)
        wait_for(lambda: "master_link_status:up" in replica.command("INFO", "replication"), 10,
                 "the replica to sync")
        sport = self.start_sentinel(master.port)
        # The first sentinel listed is down: the broker asks the next one.
        b = self.start_broker(redis_url=f"sentinel://127.0.0.1:{free_port()},127.0.0.1:{sport}/m")
        c = self.track(b.client())
        tid = c.request("SUBMIT", name="before")["id"]
        master.command("WAIT", 1, 5000)  # the replica has it
        master.kill()
        # Meanwhile submissions get UNAVAILABLE; once the sentinel promoted
        # the replica, the broker finds it and nothing acknowledged is lost.
        def submit():
            try:
                return c.request("SUBMIT", name="after")["id"]
            except ProtocolError as e:
                self.assertEqual(e.code, "UNAVAILABLE")
                return None
        wait_for(submit, 30, "the broker to reach the new master")
        self.assertEqual(c.request("GET", id=tid)["state"], "queued")
        self.assertIn("master", replica.command("INFO", "replication"))
        self.assertIn(f"127.0.0.1:{replica.port}", b.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
