"""The systemd notify path (Type=notify) of both daemons, with a fake
NOTIFY_SOCKET the test reads: READY=1 once tridentd accepts connections
(and once trident-worker has started its processes), STOPPING=1 when they
start to stop, RELOADING=1 then READY=1 around tridentd's SIGHUP."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import tridentlib as t  # noqa: E402


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="trident-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def expect(self, word):
        """Reads datagrams until one holds the line `word`; returns it."""
        while True:
            msg = self.sock.recv(4096).decode()
            if word in msg.split("\n"):
                return msg

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class NotifyTests(unittest.TestCase):
    def test_tridentd_ready_reloading_stopping(self):
        n = NotifySocket()
        self.addCleanup(n.close)
        b = t.Broker(env={"NOTIFY_SOCKET": n.path})
        self.addCleanup(b.stop)
        ready = n.expect("READY=1")
        self.assertIn(f"MAINPID={b.proc.pid}", ready)
        # It was ready before the harness saw it accept: it accepts now.
        c = b.client()
        c.request("PING")
        c.close()
        b.proc.send_signal(signal.SIGHUP)
        n.expect("RELOADING=1")
        n.expect("READY=1")
        b.proc.send_signal(signal.SIGTERM)
        n.expect("STOPPING=1")
        self.assertEqual(b.proc.wait(timeout=30), 0)

    def test_worker_ready_and_stopping(self):
        b = t.Broker()
        self.addCleanup(b.stop)
        n = NotifySocket()
        self.addCleanup(n.close)
        env = dict(os.environ, NOTIFY_SOCKET=n.path)
        w = subprocess.Popen([t.binary("worker/trident-worker"), "--broker", f"127.0.0.1:{b.port}",
                              "--processes", "1", "--threads", "1"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: w.poll() is None and (w.kill(), w.wait()))
        n.expect("READY=1")
        w.send_signal(signal.SIGTERM)
        n.expect("STOPPING=1")
        self.assertEqual(w.wait(timeout=60), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
