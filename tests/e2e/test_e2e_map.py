"""End to end through libtrident's trident_map: the example producer
(examples/producer/map_producer.c) runs 20,000 tasks against tridentd
(embedded Redis) and a trident-worker of 2 processes, and every result
comes back correct and in input order."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import tridentlib as t  # noqa: E402

N = 20000


class MapTest(t.BrokerTest):
    def test_20000_tasks_through_map_in_order(self):
        broker = self.start_broker()
        worker = self.start_worker_process(broker, processes=2, threads=4)
        t.wait_for(lambda: len(broker.stats()["workers"]) == 2, 30,
                   "trident-worker's two processes to connect")
        p = subprocess.run([t.binary("examples/map_producer"), "--broker",
                            f"127.0.0.1:{broker.port}", "--timeout", "180", str(N)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(p.stderr, b"")
        lines = p.stdout.decode().splitlines()
        self.assertEqual(len(lines), N)
        wrong = [line for i, line in enumerate(lines) if line != f"{i}\titem-{i}"]
        self.assertEqual(wrong, [], f"{len(wrong)} results wrong or out of order")
        # Both worker processes took part (their counts come with their
        # heartbeats).
        def done():
            return [w["done"] for w in broker.stats()["workers"]]
        t.wait_for(lambda: sum(done()) >= N, 60, "the workers' heartbeats to count every task")
        self.assertEqual(len(done()), worker.processes)
        self.assertTrue(all(d > 0 for d in done()), done())


if __name__ == "__main__":
    unittest.main(verbosity=2)
