#!/usr/bin/python3
"""tridentd integration tests: every request error code and connection limit.

Real tridentd processes (embedded Redis), spoken to with python3-msgpack
following docs/PROTOCOL.md sections 2, 4 and 6: BAD_FRAME, FRAME_TOO_LARGE,
BAD_REQUEST, UNKNOWN_OP, UNSUPPORTED_VERSION, AUTH_REQUIRED, AUTH_FAILED,
FORBIDDEN, NOT_FOUND, QUEUE_FULL, PAYLOAD_TOO_LARGE, TOO_MANY_CONNECTIONS,
IDLE_TIMEOUT; a slow-reading client; bad frames from one client while
another is served. (UNAVAILABLE and DRAINING: test_broker_faults.py.)

    TRIDENT_BUILD=build /usr/bin/python3 test_broker_errors.py [-k pattern]
"""
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402

from tridentlib import (BrokerTest, Client, binary, frame, free_port, raw_frame,  # noqa: E402
                        wait_for)


# libevent timers run off the loop's cached clock, so the broker's may fire a
# few ms early; that is within their precision.
TIMER_SLACK = 0.02


def packed_map(*pairs):
    """A msgpack map from (key, value) pairs, keys repeated as given."""
    out = bytes([0x80 | len(pairs)])
    for k, v in pairs:
        out += msgpack.packb(k, use_bin_type=True) + msgpack.packb(v, use_bin_type=True)
    return out


class FrameErrorsTest(BrokerTest):
    """BAD_FRAME and FRAME_TOO_LARGE: an ERROR without rid, then the close;
    other connections are not touched."""

    def setUp(self):
        self.b = self.start_broker()
        self.other = self.track(self.b.client())
        self.other.request("PING")

    def assert_other_served(self):
        sid = self.other.request("SUBMIT", name="after.bad.frame", payload=b"p")["id"]
        self.assertEqual(self.other.request("GET", id=sid)["state"], "queued")

    def test_bad_frame_closes_after_the_reply(self):
        pong = msgpack.packb({"op": "PING", "rid": 1})
        bodies = {
            "not a map": msgpack.packb(42),
            "an array": msgpack.packb(["op", "PING", "rid", 1]),
            "truncated map": pong[:-1],
            "bytes after the map": pong + b"\xc0",
            "int key": packed_map(("op", "PING"), ("rid", 1), (7, "x")),
            "bin key": packed_map(("op", "PING"), ("rid", 1), (b"k", 1)),
            "nested 9 deep": msgpack.packb({"op": "PING", "rid": 1, "x": [[[[[[[[1]]]]]]]]}),
            "str over 1 MiB": msgpack.packb({"op": "PING", "rid": 1, "x": "a" * ((1 << 20) + 1)}),
        }
        for what, body in bodies.items():
            with self.subTest(what):
                c = self.track(self.b.client())
                c.request("PING")
                c.send_raw(raw_frame(body))
                err = self.assertClosedWith(c, "BAD_FRAME")
                self.assertNotIn("rid", err, "BAD_FRAME never carries a rid")
                self.assertTrue(err["message"])
                self.assert_other_served()
        self.assertGreaterEqual(self.b.errors().get("BAD_FRAME", 0), len(bodies))

    def test_zero_length_header_is_bad_frame_after_earlier_frames(self):
        c = self.track(self.b.client())
        # A whole PING, then a header declaring 0: the PING is still served.
        c.send_raw(frame({"op": "PING", "rid": 5}) + b"\0\0\0\0")
        frames = c.expect_close()
        self.assertEqual([f["op"] for f in frames], ["OK", "ERROR"], frames)
        self.assertEqual(frames[0]["rid"], 5)
        self.assertEqual(frames[1]["code"], "BAD_FRAME")
        self.assertNotIn("rid", frames[1])
        self.assert_other_served()

    def test_frame_too_large_from_the_header_alone(self):
        c = self.track(self.b.client(client="big"))
        max_frame = c.hello_reply["max_frame"]
        for declared in (max_frame + 1, 0xFFFFFFFF):
            with self.subTest(declared=declared):
                c = self.track(self.b.client())
                c.send_raw(struct.pack(">I", declared))  # the header only, no body
                err = self.assertClosedWith(c, "FRAME_TOO_LARGE")
                self.assertNotIn("rid", err)
                self.assert_other_served()
        self.assertEqual(self.b.errors().get("FRAME_TOO_LARGE"), 2)


class RequestErrorsTest(BrokerTest):
    """BAD_REQUEST, UNKNOWN_OP, UNSUPPORTED_VERSION, FORBIDDEN, NOT_FOUND."""

    def setUp(self):
        self.b = self.start_broker()

    def test_bad_request_names_the_key_and_keeps_the_connection(self):
        c = self.track(self.b.client())
        cases = [
            ("missing name", "SUBMIT", {}, "name"),
            ("delay as str", "SUBMIT", {"name": "t", "delay": "soon"}, "delay"),
            ("delay as float", "SUBMIT", {"name": "t", "delay": 1.0}, "delay"),
            ("negative delay", "SUBMIT", {"name": "t", "delay": -1}, "delay"),
            ("priority out of range", "SUBMIT", {"name": "t", "priority": 1001}, "priority"),
            ("retries out of range", "SUBMIT", {"name": "t", "max_retries": 1001}, "max_retries"),
            ("bool as int", "SUBMIT", {"name": "t", "push_result": 1}, "push_result"),
            ("queue with a space", "SUBMIT", {"name": "t", "queue": "a b"}, "queue"),
            ("queue with a brace", "SUBMIT", {"name": "t", "queue": "a{b}"}, "queue"),
            ("name as bin", "SUBMIT", {"name": b"t"}, "name"),
            ("id too long", "SUBMIT", {"name": "t", "id": "x" * 129}, "id"),
            ("delay with run_at", "SUBMIT", {"name": "t", "delay": 10, "run_at": 1}, "delay"),
            ("GET without id", "GET", {}, "id"),
            ("CANCEL id as int", "CANCEL", {"id": 5}, "id"),
            ("batch id at the top", "SUBMIT_BATCH", {"id": "x", "tasks": [{"name": "t"}]}, "id"),
            ("batch element without name", "SUBMIT_BATCH", {"tasks": [{"name": "t"}, {}]}, "tasks"),
            ("batch empty", "SUBMIT_BATCH", {"tasks": []}, "tasks"),
            ("batch of non-maps", "SUBMIT_BATCH", {"tasks": [1, 2]}, "tasks"),
            ("STATS queue as int", "STATS", {"queue": 3}, "queue"),
        ]
        for what, op, fields, key in cases:
            with self.subTest(what):
                err = c.error(op, **fields)
                self.assertEqual(err["code"], "BAD_REQUEST", err)
                self.assertIn(key, err["message"])
                self.assertEqual(err["rid"], c.rid)
        # Nothing was stored by any of them.
        self.assertEqual(self.b.stats()["counters"]["submitted"], 0)
        self.assertTrue(c.is_open())
        self.assertGreaterEqual(self.b.errors().get("BAD_REQUEST", 0), len(cases))

    def test_duplicate_key_is_bad_request(self):
        c = self.track(self.b.client())
        c.send_raw(raw_frame(packed_map(("op", "SUBMIT"), ("rid", 1), ("name", "a"),
                                        ("name", "b"))))
        m = c.read_frame()
        self.assertEqual((m["op"], m["code"]), ("ERROR", "BAD_REQUEST"), m)
        self.assertIn("name", m["message"])
        c.send_raw(raw_frame(packed_map(("op", "PING"), ("rid", 2), ("rid", 3))))
        m = c.read_frame()
        self.assertEqual((m["op"], m["code"]), ("ERROR", "BAD_REQUEST"), m)
        self.assertIn("rid", m["message"])
        self.assertTrue(c.is_open())

    def test_missing_or_bad_rid_gets_an_error_without_rid(self):
        c = self.track(self.b.client())
        for body in ({"op": "PING"}, {"op": "PING", "rid": -1}, {"op": "PING", "rid": "1"}):
            with self.subTest(body=body):
                c.send_msg(body)
                m = c.read_frame()
                self.assertEqual((m["op"], m["code"]), ("ERROR", "BAD_REQUEST"), m)
                self.assertNotIn("rid", m)
                self.assertIn("rid", m["message"])
        self.assertTrue(c.is_open())

    def test_hello_out_of_place_is_bad_request(self):
        c = self.track(self.b.client())
        c.request("PING")
        self.assertEqual(c.error_code("HELLO", version=1), "BAD_REQUEST")
        c2 = self.track(self.b.client(client="x"))
        self.assertEqual(c2.error_code("HELLO", version=1), "BAD_REQUEST")
        c3 = self.track(self.b.client())
        err = c3.error("HELLO", version=1, role="boss")
        self.assertEqual(err["code"], "BAD_REQUEST")
        self.assertIn("role", err["message"])
        for c in (c, c2, c3):
            self.assertTrue(c.is_open())

    def test_bad_worker_hello(self):
        base = {"version": 1, "role": "worker", "worker_id": "w", "queues": ["q"], "capacity": 1}
        cases = [("worker_id", {"worker_id": None}), ("queues", {"queues": None}),
                 ("queues", {"queues": []}), ("capacity", {"capacity": None}),
                 ("capacity", {"capacity": 0}), ("weights", {"weights": [1, 2]}),
                 ("weights", {"weights": [0]})]
        for key, change in cases:
            with self.subTest(change=change):
                c = self.track(self.b.client())
                fields = dict(base)
                fields.update(change)
                fields = {k: v for k, v in fields.items() if v is not None}
                err = c.error("HELLO", **fields)
                self.assertEqual(err["code"], "BAD_REQUEST", err)
                self.assertIn(key, err["message"])
                self.assertTrue(c.is_open())
        self.assertEqual(self.b.stats()["workers"], [])

    def test_unknown_op_keeps_the_connection(self):
        c = self.track(self.b.client())
        for op in ("FROB", "ping", "OK", "ERROR", "TASK", "RESULT", "SHUTDOWN"):
            with self.subTest(op=op):
                err = c.error(op)
                self.assertEqual(err["code"], "UNKNOWN_OP", err)
                self.assertEqual(err["rid"], c.rid)
        self.assertTrue(c.is_open())
        self.assertGreaterEqual(self.b.errors().get("UNKNOWN_OP", 0), 7)

    def test_unsupported_version_closes(self):
        for version in (0, 2, 1 << 40):
            with self.subTest(version=version):
                c = self.track(self.b.client())
                c.send("HELLO", version=version)
                err = self.assertClosedWith(c, "UNSUPPORTED_VERSION")
                self.assertEqual(err["rid"], 1)
        self.assertEqual(self.b.errors().get("UNSUPPORTED_VERSION"), 3)

    def test_forbidden_worker_ops_from_clients_and_admins(self):
        plain = self.track(self.b.client())           # no HELLO: a client
        client = self.track(self.b.client(client="c"))
        admin = self.track(self.b.admin())
        ops = [("CREDIT", {"credits": 1}), ("ACK", {"id": "x"}), ("FAIL", {"id": "x"}),
               ("HEARTBEAT", {}), ("PROGRESS", {"id": "x", "progress": 1})]
        for c in (plain, client, admin):
            for op, fields in ops:
                with self.subTest(op=op):
                    self.assertEqual(c.error_code(op, **fields), "FORBIDDEN")
            self.assertTrue(c.is_open())

    def test_forbidden_admin_ops_from_clients_and_workers(self):
        plain = self.track(self.b.client())
        client = self.track(self.b.client(client="c"))
        worker = self.track(self.b.worker(queues=["q"]))
        ops = ["PAUSE", "RESUME", "PURGE", "DEAD_LIST", "DEAD_RETRY", "DEAD_PURGE"]
        for c in (plain, client, worker):
            for op in ops:
                with self.subTest(op=op):
                    self.assertEqual(c.error_code(op, queue="q"), "FORBIDDEN")
            self.assertTrue(c.is_open())
        self.assertFalse(self.b.queue_stats("q")["paused"])
        self.assertEqual(self.b.errors().get("FORBIDDEN"), 18)

    def test_client_ops_are_open_to_every_role(self):
        worker = self.track(self.b.worker(queues=["q"]))
        admin = self.track(self.b.admin())
        for c in (worker, admin):
            tid = c.request("SUBMIT", queue="other", name="t")["id"]
            self.assertEqual(c.request("GET", id=tid)["state"], "queued")
            c.request("STATS")
            c.request("INFO")
            self.assertEqual(c.request("CANCEL", id=tid)["outcome"], "queued")

    def test_not_found_for_get_and_cancel(self):
        c = self.track(self.b.client())
        for op in ("GET", "CANCEL"):
            with self.subTest(op=op):
                err = c.error(op, id="no-such-task")
                self.assertEqual(err["code"], "NOT_FOUND")
        err = c.error("GET", id="no-such-task", wait=200)
        self.assertEqual(err["code"], "NOT_FOUND")
        self.assertTrue(c.is_open())

    def test_not_found_after_result_ttl_zero(self):
        c = self.track(self.b.client())
        w = self.track(self.b.worker(queues=["q"], credits=1))
        tid = c.request("SUBMIT", queue="q", name="t", result_ttl=0)["id"]
        self.assertEqual(w.task()["id"], tid)
        self.assertEqual(w.ack(tid, b"r"), "stored")
        self.assertEqual(c.error_code("GET", id=tid), "NOT_FOUND")

    def test_not_found_for_ack_of_unknown_task(self):
        w = self.track(self.b.worker(queues=["q"]))
        err = w.error("ACK", id="no-such-task", result=b"r")
        self.assertEqual(err["code"], "NOT_FOUND", err)
        self.assertTrue(w.is_open())

    def test_not_found_for_fail_of_unknown_task(self):
        w = self.track(self.b.worker(queues=["q"]))
        err = w.error("FAIL", id="no-such-task", message="m")
        self.assertEqual(err["code"], "NOT_FOUND", err)
        self.assertTrue(w.is_open())

    def test_not_found_for_progress_of_unknown_task(self):
        w = self.track(self.b.worker(queues=["q"]))
        err = w.error("PROGRESS", id="no-such-task", progress=5)
        self.assertEqual(err["code"], "NOT_FOUND", err)
        self.assertTrue(w.is_open())


class AuthTest(BrokerTest):
    PASSWORD = "s3cret-Pa55"

    def setUp(self):
        self.b = self.start_broker(env={"TRIDENT_PASSWORD": self.PASSWORD})

    def test_nothing_but_hello_before_auth(self):
        c = self.track(self.b.client())
        for op, fields in [("PING", {}), ("SUBMIT", {"name": "t"}), ("GET", {"id": "x"}),
                           ("STATS", {}), ("INFO", {}), ("CREDIT", {"credits": 1}),
                           ("PAUSE", {"queue": "q"}), ("CANCEL", {"id": "x"})]:
            with self.subTest(op=op):
                self.assertEqual(c.error_code(op, **fields), "AUTH_REQUIRED")
        # HELLO without a password: AUTH_REQUIRED, the connection stays.
        self.assertEqual(c.error_code("HELLO", version=1), "AUTH_REQUIRED")
        # Requests answered AUTH_REQUIRED do not count: HELLO is still first.
        self.assertEqual(c.request("HELLO", version=1, password=self.PASSWORD)["version"], 1)
        c.request("PING")
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(c.request("GET", id=tid)["state"], "queued")
        self.assertEqual(self.b.stats()["counters"]["submitted"], 1)

    def test_wrong_password_closes_whatever_its_length(self):
        p = self.PASSWORD
        wrong = ["", "s", p[:-1], p + "!", p.upper(), p[:-1] + chr(ord(p[-1]) + 1),
                 "\x00" * len(p), "x" * 1000, "y" * 65536]
        for pw in wrong:
            with self.subTest(length=len(pw)):
                c = self.track(self.b.client())
                c.send("HELLO", version=1, password=pw)
                err = self.assertClosedWith(c, "AUTH_FAILED")
                self.assertEqual(err["rid"], 1)
                self.assertNotIn(p, err["message"])
        self.assertEqual(self.b.errors().get("AUTH_FAILED"), len(wrong))

    def test_roles_with_the_password(self):
        w = self.track(self.b.worker(queues=["q"], credits=1))
        a = self.track(self.b.admin())
        tid = a.request("SUBMIT", queue="q", name="t")["id"]
        self.assertEqual(w.task()["id"], tid)
        a.request("PAUSE", queue="q")


class PasswordFileTest(BrokerTest):
    def test_password_file(self):
        d = tempfile.mkdtemp(prefix="trident-pw-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        path = os.path.join(d, "pw")
        with open(path, "w") as f:
            f.write("from-the-file\n")
        b = self.start_broker("--password-file", path, password="from-the-file")
        c = self.track(b.client())
        self.assertEqual(c.error_code("PING"), "AUTH_REQUIRED")
        c.request("HELLO", version=1, password="from-the-file")
        c.request("PING")
        bad = self.track(b.client())
        bad.send("HELLO", version=1, password="from-the-file\n")
        self.assertClosedWith(bad, "AUTH_FAILED")

    def test_no_password_flag(self):
        # The password comes from a file or the environment, never a flag.
        out = subprocess.run([binary("server/tridentd"), "--password", "x",
                              "--listen", f"127.0.0.1:{free_port()}"],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 2, out)


class LimitsTest(BrokerTest):
    """QUEUE_FULL and PAYLOAD_TOO_LARGE."""

    def test_queue_full(self):
        b = self.start_broker("--max-queue-length", "3", "--queue-limit", "small:1")
        c = self.track(b.client())
        for _ in range(3):
            c.request("SUBMIT", name="t")
        t0 = time.monotonic()
        err = c.error("SUBMIT", name="t")
        self.assertLess(time.monotonic() - t0, 1.0, "QUEUE_FULL without wait must come at once")
        self.assertEqual(err["code"], "QUEUE_FULL")
        self.assertIn("default", err["message"])
        self.assertEqual(b.queue_stats("default")["ready"], 3)
        # --queue-limit overrides --max-queue-length for its queue only.
        c.request("SUBMIT", queue="small", name="t")
        self.assertEqual(c.error_code("SUBMIT", queue="small", name="t"), "QUEUE_FULL")
        for _ in range(3):
            c.request("SUBMIT", queue="other", name="t")
        self.assertEqual(c.error_code("SUBMIT", queue="other", name="t"), "QUEUE_FULL")
        # Scheduled tasks count too.
        for _ in range(3):
            c.request("SUBMIT", queue="later", name="t", delay=600000)
        self.assertEqual(c.error_code("SUBMIT", queue="later", name="t"), "QUEUE_FULL")
        self.assertEqual(c.error_code("SUBMIT", queue="later", name="t", delay=5), "QUEUE_FULL")
        self.assertEqual(b.errors().get("QUEUE_FULL"), 5)
        self.assertTrue(c.is_open())

    def test_batch_is_all_or_nothing_when_it_would_overflow(self):
        b = self.start_broker("--max-queue-length", "3")
        c = self.track(b.client())
        c.request("SUBMIT", name="t", id="first")
        err = c.error("SUBMIT_BATCH", tasks=[{"name": "t", "id": f"b{i}"} for i in range(3)])
        self.assertEqual(err["code"], "QUEUE_FULL")
        for i in range(3):
            self.assertEqual(c.error_code("GET", id=f"b{i}"), "NOT_FOUND")
        self.assertEqual(b.queue_stats("default")["ready"], 1)
        # A batch with room for all of it in one queue, overflowing another.
        err = c.error("SUBMIT_BATCH", tasks=[{"name": "t", "id": "x1"},
                                             {"name": "t", "id": "y1", "queue": "q2"},
                                             {"name": "t", "id": "y2", "queue": "q2"},
                                             {"name": "t", "id": "y3", "queue": "q2"},
                                             {"name": "t", "id": "y4", "queue": "q2"}])
        self.assertEqual(err["code"], "QUEUE_FULL")
        self.assertIn("q2", err["message"])
        for tid in ("x1", "y1", "y2", "y3", "y4"):
            self.assertEqual(c.error_code("GET", id=tid), "NOT_FOUND")
        ids = c.request("SUBMIT_BATCH", tasks=[{"name": "t", "id": "b0"},
                                               {"name": "t", "id": "b1"}])["ids"]
        self.assertEqual(ids, ["b0", "b1"])
        self.assertEqual(b.queue_stats("default")["ready"], 3)

    def test_submit_wait_gets_room_when_a_worker_takes_a_task(self):
        b = self.start_broker("--queue-limit", "small:1")
        c = self.track(b.client())
        first = c.request("SUBMIT", queue="small", name="t")["id"]
        rid = c.send("SUBMIT", queue="small", name="t", id="waiting", wait=20000)
        # A GET on the same connection goes through Redis after the SUBMIT's
        # first try: when it is answered, the SUBMIT is known to be waiting.
        self.assertEqual(c.request("GET", id=first)["state"], "queued")
        self.assertFalse(c.has_reply(rid), "the SUBMIT was answered while the queue was full")
        self.assertEqual(c.error_code("GET", id="waiting"), "NOT_FOUND")
        w = self.track(b.worker(queues=["small"], credits=1))
        self.assertEqual(w.task()["id"], first)
        t0 = time.monotonic()
        r = c.reply(rid, timeout=10)
        self.assertEqual((r["id"], r["duplicate"]), ("waiting", False))
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(c.request("GET", id="waiting")["state"], "queued")

    def test_submit_wait_times_out(self):
        b = self.start_broker("--queue-limit", "small:1")
        c = self.track(b.client())
        c.request("SUBMIT", queue="small", name="t")
        t0 = time.monotonic()
        rid = c.send("SUBMIT", queue="small", name="t", id="late", wait=300)
        c.request("PING")  # replies are not held up by the waiting SUBMIT
        err = c.raw_reply(rid, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(err["code"], "QUEUE_FULL")
        self.assertGreaterEqual(elapsed, 0.3 - TIMER_SLACK, "QUEUE_FULL before the wait ran out")
        self.assertLess(elapsed, 3.0)
        self.assertEqual(c.error_code("GET", id="late"), "NOT_FOUND")
        # The batch waits as a whole, too.
        t0 = time.monotonic()
        err = c.error("SUBMIT_BATCH", queue="small", tasks=[{"name": "a"}], wait=200)
        self.assertEqual(err["code"], "QUEUE_FULL")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2 - TIMER_SLACK)

    def test_payload_too_large(self):
        b = self.start_broker("--max-payload", "1024", "--max-frame", "8192")
        c = self.track(b.client(client="p"))
        self.assertEqual(c.hello_reply["max_payload"], 1024)
        self.assertEqual(c.hello_reply["max_frame"], 8192)
        limits = b.info()["limits"]
        self.assertEqual((limits["max_payload"], limits["max_frame"]), (1024, 8192))
        c.request("SUBMIT", name="t", payload=b"x" * 1024)
        for payload in (b"x" * 1025, "y" * 1025, b"z" * 4000):
            with self.subTest(size=len(payload), type=type(payload).__name__):
                err = c.error("SUBMIT", name="t", payload=payload)
                self.assertEqual(err["code"], "PAYLOAD_TOO_LARGE")
                self.assertIn("1024", err["message"], "the message states the limit")
        err = c.error("SUBMIT_BATCH", tasks=[{"name": "t", "id": "ok1"},
                                             {"name": "t", "id": "big", "payload": b"x" * 1025}])
        self.assertEqual(err["code"], "PAYLOAD_TOO_LARGE")
        self.assertIn("1024", err["message"])
        self.assertEqual(c.error_code("GET", id="ok1"), "NOT_FOUND")
        err = c.error("SUBMIT_BATCH", payload=b"x" * 1025, tasks=[{"name": "t"}])
        self.assertEqual(err["code"], "PAYLOAD_TOO_LARGE")
        self.assertEqual(b.queue_stats("default")["ready"], 1)
        self.assertTrue(c.is_open())

    def test_ack_result_too_large(self):
        b = self.start_broker("--max-payload", "1024", "--max-frame", "8192")
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(w.task()["id"], tid)
        err = w.error("ACK", id=tid, result=b"r" * 1025)
        self.assertEqual(err["code"], "PAYLOAD_TOO_LARGE")
        self.assertIn("1024", err["message"])
        # The task is unchanged: still running, and an ACK that fits is stored.
        self.assertEqual(c.request("GET", id=tid)["state"], "running")
        self.assertEqual(w.ack(tid, b"r" * 1024), "stored")
        got = c.request("GET", id=tid)
        self.assertEqual((got["state"], got["result"]), ("succeeded", b"r" * 1024))

    def test_frame_of_exactly_max_frame_is_read(self):
        b = self.start_broker("--max-payload", "1024", "--max-frame", "8192")
        c = self.track(b.client())
        pad = 8000
        while True:
            body = msgpack.packb({"op": "SUBMIT", "rid": 1, "name": "t", "id": "exact",
                                  "pad": b"p" * pad}, use_bin_type=True)
            if len(body) == 8192:
                break
            pad += 8192 - len(body)
        c.send_raw(raw_frame(body))
        self.assertEqual(c.reply(1)["id"], "exact")
        c.send_raw(struct.pack(">I", 8193))
        self.assertClosedWith(c, "FRAME_TOO_LARGE")


class ConnectionLimitsTest(BrokerTest):
    def test_too_many_connections(self):
        b = self.start_broker("--max-connections", "2")
        c1 = self.track(Client(b.port))
        # The readiness probe's connections may still be closing: wait until
        # the broker counts ours alone.
        wait_for(lambda: c1.request("INFO")["info"]["connections"] == 1, 10, "1 connection")
        c2 = self.track(Client(b.port))
        c2.request("PING")
        c3 = self.track(Client(b.port))
        err = self.assertClosedWith(c3, "TOO_MANY_CONNECTIONS")
        self.assertNotIn("rid", err)
        self.assertTrue(c1.is_open() and c2.is_open())
        stats = c1.request("STATS")["stats"]
        self.assertEqual(stats["errors"].get("TOO_MANY_CONNECTIONS"), 1)
        self.assertEqual(stats["counters"]["refused"], 1)
        # A slot freed is a slot taken.
        c2.close()
        wait_for(lambda: c1.request("INFO")["info"]["connections"] == 1, 10, "c2 to close")
        c4 = self.track(Client(b.port))
        self.assertTrue(c4.is_open())

    def test_idle_timeout_of_a_partial_frame(self):
        b = self.start_broker("--idle-timeout", "200ms")
        quiet = self.track(b.client())
        quiet.request("PING")
        body = frame({"op": "PING", "rid": 1})
        for what, part in (("half a body", body[:len(body) // 2]), ("half a header", body[:2])):
            with self.subTest(what):
                c = self.track(b.client())
                c.request("PING")
                t0 = time.monotonic()
                c.send_raw(part)
                err = self.assertClosedWith(c, "IDLE_TIMEOUT", timeout=5)
                elapsed = time.monotonic() - t0
                self.assertNotIn("rid", err)
                self.assertGreaterEqual(elapsed, 0.2 - TIMER_SLACK, "closed before the timeout")
                self.assertLess(elapsed, 3.0)
        # A connection that is merely quiet (longer than the timeout, above)
        # is never closed.
        self.assertTrue(quiet.is_open())
        # A frame sent slowly in pieces, each within the timeout, is read.
        c = self.track(b.client())
        for i in range(len(body)):
            c.send_raw(body[i:i + 1])
        self.assertEqual(c.reply(1)["op"], "OK")
        self.assertEqual(b.errors().get("IDLE_TIMEOUT"), 2)


class RobustnessTest(BrokerTest):
    def test_bad_frames_from_one_client_while_another_is_served(self):
        b = self.start_broker()
        good = self.track(b.client(client="good"))
        w = self.track(b.worker(queues=["q"], credits=1000))
        bad_inputs = [
            raw_frame(msgpack.packb([1, 2, 3])),
            b"\0\0\0\0",
            struct.pack(">I", 0x7FFFFFFF),
            raw_frame(b"\xc1" * 10),
            raw_frame(msgpack.packb({"op": "PING", "rid": 1})[:-3]),
            raw_frame(packed_map(("op", "PING"), ("rid", 1), (1.5, 2))),
            raw_frame(msgpack.packb({"op": "SUBMIT", "rid": 1, "name": "t"}) + b"junk"),
        ]
        expected = []
        submitted = []
        for i in range(60):
            bad = self.track(Client(b.port))
            data = bad_inputs[i % len(bad_inputs)]
            if i % 2:
                # Interleave: a good request and a bad frame in flight at once.
                gid = good.send("SUBMIT", queue="q", name="t", payload=b"%d" % i)
                bad.send_raw(data)
                submitted.append(good.reply(gid)["id"])
            else:
                bad.send_raw(data)
                submitted.append(good.request("SUBMIT", queue="q", name="t",
                                              payload=b"%d" % i)["id"])
            frames = bad.expect_close()
            self.assertEqual(frames[-1]["op"], "ERROR")
            expected.append(frames[-1]["code"])
            bad.close()
        self.assertTrue(set(expected) <= {"BAD_FRAME", "FRAME_TOO_LARGE"}, expected)
        got = [w.task()["id"] for _ in submitted]
        self.assertEqual(sorted(got), sorted(submitted))
        for tid in submitted:
            self.assertEqual(w.ack(tid, b"ok"), "stored")
        for tid in submitted[:5]:
            self.assertEqual(good.request("GET", id=tid)["state"], "succeeded")
        errors = b.errors()
        self.assertEqual(errors.get("BAD_FRAME", 0) + errors.get("FRAME_TOO_LARGE", 0), 60)

    def stored_result(self, b, size):
        """A client, and the id and result of a task that succeeded with a
        random result of size bytes."""
        c = self.track(b.client())
        w = self.track(b.worker(credits=1))
        tid = c.request("SUBMIT", name="t")["id"]
        self.assertEqual(w.task()["id"], tid)
        result = os.urandom(size)
        self.assertEqual(w.ack(tid, result), "stored")
        return c, tid, result

    def test_output_a_client_reads_late_all_arrives(self):
        b = self.start_broker()
        _, tid, result = self.stored_result(b, 64 * 1024)
        # 200 replies of 64 KiB (13 MB, over what the kernel buffers for one
        # socket) to a client with a small receive buffer that reads none
        # until it has sent every request: the broker's socket fills and it
        # must finish the writes as the client reads.
        late = self.track(Client(b.port, rcvbuf=4096))
        late.request("HELLO", version=1, role="client")
        late.send_raw(b"".join(frame({"op": "GET", "rid": i, "id": tid}) for i in range(10, 210)))
        for rid in range(10, 210):
            self.assertEqual(late.reply(rid)["result"], result)
        # And it writes at once again afterwards.
        self.assertEqual(late.request("GET", id=tid)["result"], result)

    def test_slow_reading_client_is_dropped(self):
        b = self.start_broker("--output-limit", "64K")
        c, tid, result = self.stored_result(b, 16 * 1024)
        # A well-behaved client reads a 16 KiB result (under the limit) fine.
        self.assertEqual(c.request("GET", id=tid)["result"], result)

        slow = self.track(Client(b.port, rcvbuf=4096))
        slow.request("PING")
        requests = b"".join(frame({"op": "GET", "rid": i, "id": tid}) for i in range(1, 3001))
        slow.send_raw(requests)  # about 48 MB of replies, never read
        # Meanwhile the broker keeps serving others.
        served = 0

        def dropped():
            nonlocal served
            self.assertEqual(c.request("GET", id=tid)["result"], result)
            served += 1
            return b.stats()["counters"]["slow_consumers"] >= 1

        wait_for(dropped, 30, "the slow consumer to be dropped")
        self.assertEqual(b.stats()["counters"]["slow_consumers"], 1)
        # The slow client's connection ends (what was sent before is readable).
        slow.sock.settimeout(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if not slow.sock.recv(1 << 20):
                    break
            except ConnectionResetError:
                break
        else:
            self.fail("the slow consumer's connection was not closed")
        self.assertTrue(c.is_open())
        self.assertEqual(c.request("GET", id=tid)["result"], result)
        self.assertGreater(served, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
