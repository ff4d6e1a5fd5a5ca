#!/usr/bin/python3
"""bench/run.py: Trident's benchmarks (docs/BENCHMARKS.md says what each
measures and what it does not).

Every run of every scenario starts its own processes on 127.0.0.1 -- a
redis-server (AOF on, appendfsync everysec), tridentd against it,
trident-worker when the scenario has workers, and bench/loadgen -- and stops
them by their PIDs afterwards. Each figure is the median of --runs runs,
printed with its min and max. The results go to a table on stdout and to a
JSON file; the concurrency sweep also to a PNG plot (gnuplot).

    bench/run.py --build build-release [--runs 3] [--only submit,drain,...]
                 [--json bench/results.json] [--plot docs/bench-sweep.png]

bench/run.sh builds the release tree and runs this with the defaults.
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SCENARIOS = ["ceiling", "submit", "drain", "steady", "roundtrip", "roundtrip_busy", "load", "sweep",
             "memory"]
BUSY_POLL = ["--busy-poll", "100"]  # tridentd's setting for roundtrip_busy
PAYLOAD = 100
WORKER_FAST = ["--processes", "2", "--threads", "4", "--slots", "64", "--prefetch", "64"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


class Stack:
    """redis-server + tridentd (+ trident-worker) for one run."""

    redis_link = "tcp"  # how tridentd reaches redis-server: tcp or unix (--redis-link)
    broker_extra = []   # more tridentd options for every run (--broker-args)

    def __init__(self, build, broker_args=(), worker_args=None, keep=False):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="trident-bench-")
        self.keep = keep
        self.procs = []
        self.redis_port = free_port()
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.redis = self.spawn("redis", ["redis-server", "--port", str(self.redis_port),
                                          "--bind", "127.0.0.1", "--dir", self.dir,
                                          "--appendonly", "yes", "--appendfsync", "everysec",
                                          "--save", "", "--daemonize", "no",
                                          "--hash-max-listpack-value", "1024",
                                          "--unixsocket", os.path.join(self.dir, "redis.sock"),
                                          "--unixsocketperm", "700"])
        wait_until(lambda: self.redis_cmd("PING") == "PONG", 10, "redis-server")
        self.broker = self.spawn("tridentd", [self.bin("server/tridentd"),
                                              "--listen", self.addr,
                                              "--redis", self.redis_url(self.redis_link),
                                              *broker_args, *self.broker_extra])
        # STATS needs Redis: tridentd accepts connections before it reaches it.
        wait_until(lambda: self.cli("stats").returncode == 0, 10, "tridentd and its Redis")
        self.worker = None
        if worker_args is not None:
            self.start_worker(worker_args)

    def redis_url(self, link):
        if link == "unix":
            return "unix://" + os.path.join(self.dir, "redis.sock")
        return f"redis://127.0.0.1:{self.redis_port}"

    def bin(self, name):
        return os.path.join(self.build, name)

    def spawn(self, name, argv, **kw):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **kw)
        self.procs.append(p)
        return p

    def start_worker(self, args):
        self.worker = self.spawn("worker", [self.bin("worker/trident-worker"), "--broker",
                                            self.addr, *args])
        return self.worker

    def wait_workers(self, n_processes):
        def ready():
            out = self.cli("--json", "workers").stdout
            try:
                return len(json.loads(out)) >= n_processes
            except ValueError:
                return False
        wait_until(ready, 30, "workers to connect")

    def cli(self, *args):
        return subprocess.run([self.bin("client/trident"), "--broker", self.addr, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def redis_cmd(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return p.stdout.strip()

    def redis_info(self, section):
        out = {}
        for line in self.redis_cmd("INFO", section).splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def loadgen(self, mode, *args, timeout=600):
        p = subprocess.run([self.bin("bench/loadgen"), mode, "--broker", self.addr, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"loadgen {mode} failed: {p.stderr.strip()}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    def rss_kib(self, pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- scenarios -----------------------------------------------------------------
# Each returns a dict of figures for one run.

def run_ceiling(build, a):
    """redis-benchmark, pipelined, on the same kind of Redis the stack uses."""
    s = Stack(build)
    try:
        out = {}
        tests = "set,get,lpush,rpop,zadd,zpopmin,hset"
        p = subprocess.run(["redis-benchmark", "-p", str(s.redis_port), "-P", "16", "-q",
                            "-n", str(a.ceiling_n), "-r", "1000000", "-t", tests],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in p.stdout.replace("\r", "\n").splitlines():
            m = re.match(r"^(\S+)(?: \S+)*: ([\d.]+) requests per second", line.strip())
            if m:
                out[m.group(1).lower()] = float(m.group(2))
        p = subprocess.run(["redis-benchmark", "-p", str(s.redis_port), "-P", "16", "-q",
                            "-n", str(a.ceiling_n), "evalsha",
                            s.redis_cmd("SCRIPT", "LOAD", "return 1"), "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        m = re.search(r"([\d.]+) requests per second", p.stdout.replace("\r", "\n"))
        if m:
            out["evalsha_noop"] = float(m.group(1))
        return out
    finally:
        s.stop()


def run_submit(build, a):
    out = {}
    for label, args in (("single", ["--batch", "1", "--window", "2000",
                                    "--n", str(a.submit_n)]),
                        ("batch100", ["--batch", "100", "--window", "20",
                                      "--n", str(a.submit_n * 2)])):
        s = Stack(build)
        try:
            r = s.loadgen("submit", "--payload-size", str(PAYLOAD), *args)
            out[label] = r["rate"]
        finally:
            s.stop()
    return out


def run_drain(build, a):
    s = Stack(build)
    try:
        s.loadgen("fill", "--n", str(a.drain_n), "--payload-size", str(PAYLOAD))
        p = subprocess.Popen([s.bin("bench/loadgen"), "drain", "--broker", s.addr, "--n",
                              str(a.drain_n)], stdout=subprocess.PIPE, text=True)
        assert json.loads(p.stdout.readline()) == {"ready": 1}
        s.start_worker(WORKER_FAST)
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError("loadgen drain failed")
        return {"rate": json.loads(out.strip().splitlines()[-1])["rate"]}
    finally:
        s.stop()


def with_workers(build, fn, worker_args=WORKER_FAST, processes=2, broker_args=()):
    s = Stack(build, broker_args=broker_args, worker_args=worker_args)
    try:
        s.wait_workers(processes)
        return fn(s)
    finally:
        s.stop()


def run_steady(build, a):
    def go(s):
        r = s.loadgen("steady", "--window", "2000", "--seconds", str(a.seconds),
                      "--payload-size", str(PAYLOAD))
        return {"rate": r["rate"], "p50_us": r["p50_us"], "p99_us": r["p99_us"]}
    return with_workers(build, go)


def run_roundtrip(build, a, broker_args=()):
    def go(s):
        r = s.loadgen("apply", "--n", str(a.roundtrip_n), "--payload-size", str(PAYLOAD))
        return {"p50_us": r["p50_us"], "p99_us": r["p99_us"], "p999_us": r["p999_us"]}
    return with_workers(build, go, broker_args=broker_args)


def run_roundtrip_busy(build, a):
    """The round trip with tridentd polling instead of sleeping (busy-poll)."""
    return run_roundtrip(build, a, BUSY_POLL)


def run_load(build, a, rate):
    def go(s):
        r = s.loadgen("rate", "--rate", str(int(rate)), "--seconds", str(a.seconds),
                      "--payload-size", str(PAYLOAD))
        return {"target": int(rate), "rate": r["rate"], "p50_us": r["p50_us"],
                "p99_us": r["p99_us"]}
    return with_workers(build, go)


SWEEP_TASKS = {
    "sha256_64k": ["--name", "sha256", "--payload-size", "65536"],
    "sleep_10ms": ["--name", "sleep", "--payload", "10"],
}


def run_sweep_point(build, a, task, procs, threads):
    args = ["--processes", str(procs), "--threads", str(threads), "--prefetch", str(threads)]

    def go(s):
        window = max(16, 2 * procs * threads)
        r = s.loadgen("steady", "--window", str(window), "--seconds", str(a.sweep_seconds),
                      "--warmup", "0.5", *SWEEP_TASKS[task])
        return {"rate": r["rate"]}
    return with_workers(build, go, args, procs)


def run_memory(build, a):
    out = {}
    s = Stack(build)
    try:
        before = int(s.redis_info("memory")["used_memory"])
        s.loadgen("fill", "--n", str(a.memory_n), "--payload-size", str(PAYLOAD))
        after = int(s.redis_info("memory")["used_memory"])
        per = (after - before) / a.memory_n
        out["redis_bytes_per_task"] = round(per, 1)
        out["redis_bytes_beyond_payload"] = round(per - PAYLOAD, 1)
    finally:
        s.stop()
    s = Stack(build, broker_args=["--max-connections", str(a.idle_n + 100)])
    try:
        before = s.rss_kib(s.broker.pid)
        p = subprocess.Popen([s.bin("bench/loadgen"), "idle", "--broker", s.addr, "--n",
                              str(a.idle_n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        line = json.loads(p.stdout.readline())
        assert line == {"connected": a.idle_n}, line
        after = s.rss_kib(s.broker.pid)
        p.stdin.close()
        p.wait(timeout=60)
        out["tridentd_rss_kib_idle"] = before
        out["tridentd_bytes_per_connection"] = round((after - before) * 1024 / a.idle_n, 1)
    finally:
        s.stop()
    return out


# ---- running and reporting -------------------------------------------------------

def summarize(runs):
    """Per figure: median, min, max over the runs."""
    keys = runs[0].keys()
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        if all(isinstance(v, (int, float)) for v in vals):
            out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
                      "runs": vals}
    return out


def repeat(n, fn):
    runs = []
    for i in range(n):
        runs.append(fn())
        print(f"    run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    return summarize(runs)


def machine(build):
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def first_line(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"
    return {
        "cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "redis": first_line(["redis-server", "--version"]),
        "tridentd": first_line([os.path.join(build, "server/tridentd"), "--version"]),
        "compiler": first_line(["cc", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def fmt(v):
    if isinstance(v, float) and v >= 100:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_table(results):
    print("\n| scenario | figure | median | min | max |")
    print("|---|---|---|---|---|")
    for scen, figs in results.items():
        if scen == "sweep":
            continue
        for k, v in figs.items():
            print(f"| {scen} | {k} | {fmt(v['median'])} | {fmt(v['min'])} | {fmt(v['max'])} |")
    if "sweep" in results:
        for task, grid in results["sweep"].items():
            print(f"\nsweep {task}: tasks/s (median of runs), processes x threads")
            threads = sorted({int(k.split("x")[1]) for k in grid})
            procs = sorted({int(k.split("x")[0]) for k in grid})
            print("| processes \\ threads | " + " | ".join(map(str, threads)) + " |")
            print("|---" * (len(threads) + 1) + "|")
            for p in procs:
                row = [fmt(grid[f"{p}x{t}"]["rate"]["median"]) for t in threads]
                print(f"| {p} | " + " | ".join(row) + " |")


def plot(results, path):
    if "sweep" not in results or shutil.which("gnuplot") is None:
        return
    d = tempfile.mkdtemp(prefix="trident-plot-")
    cmds = ["set terminal png size 1100,460 noenhanced", f'set output "{path}"', "set multiplot layout 1,2",
            "set logscale x 2", "set xlabel 'threads per process'",
            "set ylabel 'tasks/s'", "set key top left", "set grid"]
    for task, grid in results["sweep"].items():
        procs = sorted({int(k.split("x")[0]) for k in grid})
        threads = sorted({int(k.split("x")[1]) for k in grid})
        plots = []
        for p in procs:
            fn = os.path.join(d, f"{task}_{p}.dat")
            with open(fn, "w") as f:
                for t in threads:
                    f.write(f"{t} {grid[f'{p}x{t}']['rate']['median']}\n")
            plots.append(f"'{fn}' using 1:2 with linespoints title '{p} process(es)'")
        cmds.append(f"set title '{task}: tasks/s by processes x threads per process'")
        cmds.append("set logscale y 2; set yrange [*:*]" if task.startswith("sleep")
                    else "unset logscale y; set yrange [0:*]")
        cmds.append("plot " + ", ".join(plots))
    cmds.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, check=True)
    shutil.rmtree(d, ignore_errors=True)
    print(f"\nplot: {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--redis-link", choices=("tcp", "unix"), default="tcp",
                    help="tridentd's connection to redis-server (default tcp)")
    ap.add_argument("--broker-args", default="",
                    help="more tridentd options for every run, e.g. \"--busy-poll 100\"")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--json", default="bench/results.json")
    ap.add_argument("--plot", default="docs/bench-sweep.png")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--sweep-seconds", type=float, default=2)
    ap.add_argument("--sweep-procs", default="1,2,4,8")
    ap.add_argument("--sweep-threads", default="1,2,4,8,16,32")
    ap.add_argument("--submit-n", type=int, default=200000)
    ap.add_argument("--drain-n", type=int, default=200000)
    ap.add_argument("--roundtrip-n", type=int, default=10000)
    ap.add_argument("--memory-n", type=int, default=1000000)
    ap.add_argument("--idle-n", type=int, default=10000)
    ap.add_argument("--ceiling-n", type=int, default=1000000)
    ap.add_argument("--replot", action="store_true",
                    help="only print the table and plot of the --json file again")
    a = ap.parse_args()
    Stack.redis_link = a.redis_link
    Stack.broker_extra = a.broker_args.split()
    if a.replot:
        with open(a.json) as f:
            results = json.load(f)["results"]
        print_table(results)
        plot(results, a.plot)
        return
    build = os.path.abspath(a.build)
    only = a.only.split(",")
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    # 10,000 idle connections need as many descriptors, in tridentd and loadgen.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.idle_n + 1000:
        ap.error(f"--idle-n {a.idle_n} needs more file descriptors than the limit {want}")

    info = {"machine": machine(build), "payload_bytes": PAYLOAD, "runs": a.runs,
            "redis": "external redis-server, appendonly yes, appendfsync everysec, no RDB, "
                     "hash-max-listpack-value 1024 (as docs/OPERATIONS.md advises)",
            "worker": " ".join(WORKER_FAST) + " (echo handler unless said)",
            "command": " ".join(sys.argv)}
    print(json.dumps(info, indent=2))
    results = {}
    for scen in SCENARIOS:
        if scen not in only:
            continue
        print(f"\n== {scen}", flush=True)
        if scen == "load":
            steady = results.get("steady", {}).get("rate", {}).get("median")
            if steady is None:
                steady = repeat(1, lambda: run_steady(build, a))["rate"]["median"]
            results[scen] = repeat(a.runs, lambda: run_load(build, a, steady / 2))
        elif scen == "sweep":
            grid = {}
            for task in SWEEP_TASKS:
                grid[task] = {}
                for p in map(int, a.sweep_procs.split(",")):
                    for t in map(int, a.sweep_threads.split(",")):
                        print(f"  {task} {p}x{t}", flush=True)
                        grid[task][f"{p}x{t}"] = repeat(
                            a.runs, lambda: run_sweep_point(build, a, task, p, t))
            results[scen] = grid
        else:
            fn = globals()[f"run_{scen}"]
            results[scen] = repeat(a.runs, lambda: fn(build, a))
    print_table(results)
    with open(a.json, "w") as f:
        json.dump({"info": info, "results": results}, f, indent=1)
    print(f"\nresults: {a.json}")
    plot(results, a.plot)


if __name__ == "__main__":
    main()
