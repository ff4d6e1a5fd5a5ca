"""The systemd units of deploy/systemd/, as `cmake --install` installs them.

    test_units.py CMAKE BUILD_DIR TRIDENTD TRIDENT_WORKER

The units name /usr/bin/tridentd, the Debian path, and `systemd-analyze
verify` fails a unit whose ExecStart= binary does not exist. Rather than
patch a copy, the test installs the build into a temporary prefix
(`cmake --install BUILD --prefix TMP`), whose install step rewrites
/usr/bin/ to TMP/bin (deploy/units.cmake), and checks what a real install
gets: units that start TMP/bin/tridentd, which exists.

  - systemd-analyze verify passes on tridentd.service and on an instance of
    the template (trident-worker@pool.service) and says nothing about them:
    verify exits 0 even for an unknown key or a bad value, only warning, so
    any line naming the unit fails the test (a broken copy shows that it
    would);
  - systemd-analyze security --offline rates both sandboxes SAFE or OK;
  - what the deployment relies on is there: Type=notify with
    NotifyAccess=main and the sd_notify comment, reload by SIGHUP, stop by
    SIGTERM with TimeoutStopSec above the drain (tridentd's grace; the
    worker's grace + kill-grace + 5s, its supervisor's limit, from their
    --help defaults), the user, the directories, the sandbox settings, and
    nothing that would keep tridentd from running /usr/bin/redis-server;
  - systemd-sysusers, run on a scratch root with the installed
    sysusers.d/trident.conf, creates the user and group the units run as.

Exits 77 (a skip for ctest) when systemd-analyze is not installed, after
running the checks that do not need it; scripts/deps.sh installs systemd.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import deploylib

ARGS = {}
PREFIX = None  # the temporary install prefix, set by setUpModule
UNITS = {"tridentd": "tridentd.service", "trident-worker": "trident-worker@.service"}
MISSING_TOOLS = set()


def setUpModule():
    global PREFIX
    PREFIX = tempfile.mkdtemp(prefix="trident-install-")
    subprocess.run([ARGS["cmake"], "--install", ARGS["build"], "--prefix", PREFIX],
                   check=True, stdout=subprocess.DEVNULL)


def tearDownModule():
    shutil.rmtree(PREFIX, ignore_errors=True)


def installed(unit):
    return os.path.join(PREFIX, "lib", "systemd", "system", unit)


def parse_unit(path):
    """{section: {key: [values]}} of a unit file (no line continuations)."""
    sections, current = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                current = sections.setdefault(line.strip("[]"), {})
            else:
                key, _, value = line.partition("=")
                current.setdefault(key.strip(), []).append(value.strip())
    return sections


def need(tool):
    path = shutil.which(tool)
    if path is None:
        MISSING_TOOLS.add(tool)
        raise unittest.SkipTest(f"{tool} is not installed (apt-get install systemd)")
    return path


class Installed(unittest.TestCase):
    def test_exec_start_points_at_the_prefix(self):
        for program, unit in UNITS.items():
            service = parse_unit(installed(unit))["Service"]
            self.assertEqual(service["ExecStart"][0].split()[0],
                             os.path.join(PREFIX, "bin", program))
            self.assertTrue(os.access(os.path.join(PREFIX, "bin", program), os.X_OK))
            source = parse_unit(os.path.join(deploylib.DEPLOY, "systemd", unit))["Service"]
            self.assertEqual(source["ExecStart"][0].split()[0], f"/usr/bin/{program}",
                             f"deploy/systemd/{unit} should name the Debian path")

    def test_sysusers_creates_the_user(self):
        sysusers = need("systemd-sysusers")
        conf = os.path.join(PREFIX, "lib", "sysusers.d", "trident.conf")
        self.assertTrue(os.path.exists(conf), "sysusers.d/trident.conf is not installed")
        with tempfile.TemporaryDirectory() as root:
            os.mkdir(os.path.join(root, "etc"))
            subprocess.run([sysusers, f"--root={root}", conf], check=True, capture_output=True)
            with open(os.path.join(root, "etc", "passwd")) as f:
                users = {fields[0]: fields for fields in
                         (line.rstrip("\n").split(":") for line in f)}
            with open(os.path.join(root, "etc", "group")) as f:
                groups = {line.split(":")[0] for line in f}
        for unit in UNITS.values():
            service = parse_unit(installed(unit))["Service"]
            user, group = service["User"][0], service["Group"][0]
            self.assertIn(user, users, f"{unit}: User={user} is not created by sysusers")
            self.assertIn(group, groups, f"{unit}: Group={group} is not created by sysusers")
            self.assertEqual(users[user][5], "/var/lib/trident")
            self.assertTrue(users[user][6].endswith("nologin"), "a service user has no shell")


class Verify(unittest.TestCase):
    def verify(self, path):
        """(exit code, output lines naming the unit) of systemd-analyze verify."""
        analyze = need("systemd-analyze")
        p = subprocess.run([analyze, "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=60)
        name = os.path.basename(path)
        output = (p.stdout + p.stderr).splitlines()
        return p.returncode, [line for line in output if name in line], output

    def instance(self, tmp):
        """trident-worker@pool.service: a template is verified as an instance."""
        link = os.path.join(tmp, "trident-worker@pool.service")
        os.symlink(installed(UNITS["trident-worker"]), link)
        return link

    def test_verify(self):
        with tempfile.TemporaryDirectory() as tmp:
            for path in (installed(UNITS["tridentd"]), self.instance(tmp)):
                with self.subTest(unit=os.path.basename(path)):
                    rc, about, output = self.verify(path)
                    self.assertEqual((rc, about), (0, []), "\n".join(output))

    def test_verify_catches_a_bad_unit(self):
        """verify exits 0 on an unknown key: the check above must see it."""
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.service")
            with open(installed(UNITS["tridentd"])) as f:
                text = f.read()
            with open(bad, "w") as f:
                f.write(text.replace("[Service]\n", "[Service]\nProtectHomme=yes\n"))
            rc, about, _ = self.verify(bad)
            self.assertEqual(rc, 0)
            self.assertTrue(any("ProtectHomme" in line for line in about), about)

    def test_security(self):
        analyze = need("systemd-analyze")
        with tempfile.TemporaryDirectory() as tmp:
            for path in (installed(UNITS["tridentd"]), self.instance(tmp)):
                with self.subTest(unit=os.path.basename(path)):
                    p = subprocess.run([analyze, "security", "--offline=yes", path],
                                       capture_output=True, text=True, timeout=60)
                    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", p.stdout)
                    self.assertIsNotNone(m, p.stdout + p.stderr)
                    self.assertIn(m.group(2), ("SAFE", "OK"),
                                  f"exposure {m.group(1)} {m.group(2)}:\n{p.stdout}")


class Settings(unittest.TestCase):
    """What the units must say, read from the source units."""

    def unit(self, program):
        path = os.path.join(deploylib.DEPLOY, "systemd", UNITS[program])
        with open(path) as f:
            head = f.read().split("\n\n")[0]  # the comment at the top, as one line
        return parse_unit(path), " ".join(line.lstrip("#").strip() for line in head.splitlines())

    def test_notify_and_signals(self):
        for program in UNITS:
            with self.subTest(program=program):
                u, head = self.unit(program)
                s = u["Service"]
                self.assertEqual(s["Type"], ["notify"])
                self.assertEqual(s["NotifyAccess"], ["main"])
                self.assertIn(f"{program} calls sd_notify(READY=1)", head)
                self.assertIn("sd_notify(STOPPING=1)", head)
                self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
                self.assertEqual(s["KillSignal"], ["SIGTERM"])
                self.assertEqual(s["KillMode"], ["mixed"], "SIGTERM to the main process only")
                self.assertEqual(s["Restart"], ["on-failure"])

    def test_stop_timeout_covers_the_drain(self):
        d = deploylib.help_options(ARGS["tridentd"])
        w = deploylib.help_options(ARGS["trident-worker"])
        drain = {
            "tridentd": deploylib.parse_duration(d["grace"]),
            # worker/main.c: the supervisor kills at grace + kill-grace + 5s.
            "trident-worker": deploylib.parse_duration(w["grace"])
            + deploylib.parse_duration(w["kill-grace"]) + 5000,
        }
        for program, ms in drain.items():
            with self.subTest(program=program):
                timeout = deploylib.parse_duration(self.unit(program)[0]["Service"]
                                                   ["TimeoutStopSec"][0])
                self.assertGreaterEqual(timeout, ms + 10000,
                                        f"TimeoutStopSec {timeout} ms leaves under 10 s "
                                        f"beyond the {ms} ms drain")

    def test_user_directories_and_config(self):
        configs = {"tridentd": "/etc/trident/tridentd.conf",
                   "trident-worker": "/etc/trident/worker-%i.conf"}
        for program in UNITS:
            with self.subTest(program=program):
                s = self.unit(program)[0]["Service"]
                self.assertEqual((s["User"], s["Group"]), (["trident"], ["trident"]))
                self.assertEqual(s["ConfigurationDirectory"], ["trident"])
                self.assertTrue(s["StateDirectory"][0].startswith("trident"))
                self.assertTrue(s["WorkingDirectory"][0].startswith("/var/lib/trident"))
                self.assertIn(f"--config {configs[program]}", s["ExecStart"][0])
                self.assertEqual(s["UMask"], ["0077"])

    def test_sandbox(self):
        common = {
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
            "ProtectHome": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
            "LockPersonality": "yes", "SystemCallArchitectures": "native",
            "CapabilityBoundingSet": "",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        }
        for program in UNITS:
            with self.subTest(program=program):
                s = self.unit(program)[0]["Service"]
                for key, value in common.items():
                    self.assertEqual(s.get(key), [value], key)
        tridentd = self.unit("tridentd")[0]["Service"]
        worker = self.unit("trident-worker")[0]["Service"]
        self.assertEqual(tridentd.get("MemoryDenyWriteExecute"), ["yes"])
        # Inherited by every program an exec handler runs: JITs would die.
        self.assertNotIn("MemoryDenyWriteExecute", worker)
        # The embedded mode executes /usr/bin/redis-server.
        for key in ("NoExecPaths", "ExecPaths", "InaccessiblePaths", "TemporaryFileSystem"):
            self.assertNotIn(key, tridentd, f"{key}= could keep redis-server from running")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: test_units.py CMAKE BUILD_DIR TRIDENTD TRIDENT_WORKER")
    ARGS.update(zip(("cmake", "build", "tridentd", "trident-worker"), sys.argv[1:]))
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if MISSING_TOOLS:
        print(f"SKIP: {', '.join(sorted(MISSING_TOOLS))} not installed: the units were not "
              "verified (scripts/deps.sh installs systemd)")
        sys.exit(77)
