"""deploy/docker/: the compose file, the Dockerfile and the entry point.

    test_compose.py TRIDENTD TRIDENT_WORKER TRIDENT

No Docker engine runs here, so nothing is built or started. Instead:
  - docker-compose.yml (parsed with python3-yaml, YAML merge keys resolved
    as Compose resolves them): the services redis, tridentd and
    trident-worker, all from the image the Dockerfile builds with the
    repository as context; Redis with AOF on, its --dir on a declared volume,
    a redis-cli ping healthcheck; tridentd against redis://redis:6379/0 on
    0.0.0.0:7878 with a `trident ping` healthcheck, started once Redis is
    healthy; the worker with 2 replicas pointed at tridentd. Trident settings
    come by environment only: each command is the bare program, each
    TRIDENT_* name is a setting of that program (its --help), and the
    program loads that environment (deploylib.check_loads). The stop grace
    periods cover the drains the environment sets up;
  - Dockerfile (read instruction by instruction): a debian:bookworm build
    stage that installs every -dev package scripts/deps.sh lists and builds
    Release without tests, then a debian:bookworm-slim stage that copies
    from it, installs no -dev package, runs as a non-root user and exposes
    7878; its package list holds the package of every DT_NEEDED entry of
    the three binaries and libtrident.so (readelf, then dpkg -S on this
    Debian host);
  - entrypoint.sh, run with stand-ins for the programs: the command picks
    tridentd, trident-worker or trident, and options alone go to tridentd.
  - `docker compose config` (or Debian's docker-compose) when installed; it
    is skipped otherwise (it needs no engine, only the client plugin).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import deploylib

try:
    import yaml
except ImportError:  # scripts/deps.sh installs it
    sys.exit("test_compose.py needs python3-yaml: apt-get install python3-yaml")

BINARIES = {}
DOCKER = os.path.join(deploylib.DEPLOY, "docker")
COMPOSE = os.path.join(DOCKER, "docker-compose.yml")
DOCKERFILE = os.path.join(DOCKER, "Dockerfile")
PROGRAMS = ("tridentd", "trident-worker", "trident")
# Packages of debian:bookworm-slim itself (priority required).
BASE_PACKAGES = {"libc6", "libgcc-s1"}
SANITIZER_LIBS = ("libasan", "libubsan", "libtsan", "liblsan")


def compose():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def command(service):
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(word) for word in cmd]


def environment(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def healthcheck(service):
    test = service.get("healthcheck", {}).get("test", [])
    return " ".join(test[1:]) if isinstance(test, list) else test


def dockerfile_stages():
    """[{from, name, instructions: [(KEYWORD, args)]}] of the Dockerfile."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, args))
    return stages


def apt_installs(stage):
    """The packages a stage's RUN lines give to apt-get install."""
    packages = set()
    for keyword, args in stage["instructions"]:
        if keyword != "RUN":
            continue
        for part in re.split(r"&&|;", args):
            words = part.split()
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                packages.update(w for w in after if not w.startswith("-"))
    return packages


def deps_dev_packages():
    """The -dev packages in scripts/deps.sh's list, but the fuzz build's."""
    with open(os.path.join(deploylib.REPO, "scripts", "deps.sh")) as f:
        body = re.search(r"^packages=\((.*?)^\)", f.read(), re.S | re.M).group(1)
    words = [w for line in body.splitlines() for w in line.split("#")[0].split()]
    return {w for w in words if w.endswith("-dev") and not w.startswith("libclang")}


class Compose(unittest.TestCase):
    def setUp(self):
        self.c = compose()
        self.services = self.c["services"]

    def test_services(self):
        self.assertEqual(set(self.services), {"redis", "tridentd", "trident-worker"})

    def test_one_image_built_from_the_dockerfile(self):
        for name, s in self.services.items():
            with self.subTest(service=name):
                build = s.get("build")
                self.assertIsInstance(build, dict, "built, not pulled")
                context = os.path.normpath(os.path.join(DOCKER, build["context"]))
                self.assertEqual(context, deploylib.REPO, "the context is the repository")
                self.assertEqual(os.path.normpath(os.path.join(context, build["dockerfile"])),
                                 DOCKERFILE)
                self.assertEqual(s.get("image"), self.services["tridentd"].get("image"))

    def test_redis(self):
        r = self.services["redis"]
        cmd = command(r)
        self.assertEqual(cmd[0], "redis-server")
        opts = dict(zip(cmd[1::2], cmd[2::2]))
        self.assertEqual(opts.get("--appendonly"), "yes", "AOF on")
        self.assertEqual(opts.get("--maxmemory-policy"), "noeviction", "tasks never evicted")
        mounts = {v.split(":")[1]: v.split(":")[0] for v in r["volumes"]}
        self.assertIn(opts["--dir"], mounts, "the data directory must be on the volume")
        self.assertIn(mounts[opts["--dir"]], self.c.get("volumes", {}), "a named volume")
        self.assertIn("redis-cli ping", healthcheck(r))

    def test_tridentd(self):
        t = self.services["tridentd"]
        self.assertEqual(command(t), ["tridentd"], "settings by environment, not flags")
        env = environment(t)
        self.assertEqual(env.get("TRIDENT_REDIS"), "redis://redis:6379/0")
        self.assertEqual(env.get("TRIDENT_LISTEN"), "0.0.0.0:7878")
        self.assertEqual(healthcheck(t), "trident ping")
        self.assertEqual(t["depends_on"]["redis"]["condition"], "service_healthy")

    def test_worker(self):
        w = self.services["trident-worker"]
        self.assertEqual(command(w), ["trident-worker"], "settings by environment, not flags")
        self.assertEqual(w["deploy"]["replicas"], 2)
        self.assertEqual(environment(w).get("TRIDENT_BROKER"), "tridentd:7878")
        self.assertIn("tridentd", w["depends_on"])

    def test_environment_names_and_loads(self):
        for name in ("tridentd", "trident-worker"):
            with self.subTest(service=name):
                env = environment(self.services[name])
                options = deploylib.help_options(BINARIES[name])
                names = {"TRIDENT_" + o.upper().replace("-", "_") for o in options}
                unknown = sorted(set(env) - names)
                self.assertEqual(unknown, [], f"not {name} settings")
                ok, output = deploylib.check_loads(BINARIES[name], env=env)
                self.assertTrue(ok, f"{name} with the compose environment: {output}")

    def test_stop_grace_covers_the_drain(self):
        def setting(program, env, name):
            value = env.get("TRIDENT_" + name.upper().replace("-", "_"))
            return deploylib.parse_duration(value or deploylib.help_options(program)[name])

        t_env = environment(self.services["tridentd"])
        w_env = environment(self.services["trident-worker"])
        drains = {
            "tridentd": setting(BINARIES["tridentd"], t_env, "grace"),
            "trident-worker": setting(BINARIES["trident-worker"], w_env, "grace")
            + setting(BINARIES["trident-worker"], w_env, "kill-grace") + 5000,
        }
        for name, ms in drains.items():
            with self.subTest(service=name):
                grace = self.services[name].get("stop_grace_period", "10s")
                self.assertGreater(deploylib.parse_duration(grace), ms,
                                   "Docker would SIGKILL during the drain")

    def test_docker_compose_config(self):
        if shutil.which("docker") and subprocess.run(
                ["docker", "compose", "version"], capture_output=True).returncode == 0:
            cmd = ["docker", "compose"]
        elif shutil.which("docker-compose"):
            cmd = ["docker-compose"]
        else:
            self.skipTest("neither `docker compose` nor docker-compose is installed")
        p = subprocess.run(cmd + ["-f", COMPOSE, "config", "-q"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Dockerfile(unittest.TestCase):
    def setUp(self):
        self.stages = dockerfile_stages()
        self.build, self.runtime = self.stages[0], self.stages[-1]

    def test_stages(self):
        self.assertEqual(len(self.stages), 2)
        self.assertEqual(self.build["from"], "debian:bookworm")
        self.assertTrue(self.build["name"], "the build stage is named, for COPY --from")
        self.assertEqual(self.runtime["from"], "debian:bookworm-slim")
        copies = [args for kw, args in self.runtime["instructions"] if kw == "COPY"]
        self.assertTrue(any(f"--from={self.build['name']}" in c for c in copies))

    def test_build_stage(self):
        installs = apt_installs(self.build)
        self.assertEqual(sorted(deps_dev_packages() - installs), [],
                         "-dev packages of scripts/deps.sh missing from the build stage")
        self.assertLessEqual({"cmake", "pkg-config"}, installs)
        runs = " ".join(args for kw, args in self.build["instructions"] if kw == "RUN")
        for flag in ("-DCMAKE_BUILD_TYPE=Release", "-DTRIDENT_TESTS=OFF", "cmake --install"):
            self.assertIn(flag, runs)

    def test_runtime_stage(self):
        installs = apt_installs(self.runtime)
        self.assertEqual([p for p in installs if p.endswith("-dev")], [])
        users = [args for kw, args in self.runtime["instructions"] if kw == "USER"]
        self.assertTrue(users, "the runtime stage must set a USER")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        self.assertIn(("EXPOSE", "7878"), self.runtime["instructions"])
        keywords = [kw for kw, _ in self.runtime["instructions"]]
        self.assertIn("ENTRYPOINT", keywords)
        self.assertNotIn("HEALTHCHECK", keywords, "the healthcheck is compose's")

    def test_runtime_packages_hold_the_libraries(self):
        """Every library the binaries (and libtrident.so) link directly is
        installed; apt brings the libraries' own dependencies."""
        readelf, dpkg = shutil.which("readelf"), shutil.which("dpkg-query")
        if not readelf or not dpkg:
            self.skipTest("needs readelf (binutils) and dpkg-query")
        installs = apt_installs(self.runtime)
        objects = list(BINARIES.values())
        for obj in objects:
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                                subprocess.run([readelf, "-d", obj], capture_output=True,
                                               text=True, check=True).stdout)
            ldd = subprocess.run(["ldd", obj], capture_output=True, text=True).stdout
            paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
            for soname in needed:
                if soname.startswith(SANITIZER_LIBS):
                    continue  # the image is built without sanitizers
                with self.subTest(object=os.path.basename(obj), library=soname):
                    self.assertIn(soname, paths, f"ldd does not resolve {soname}")
                    if soname.startswith("libtrident."):  # ours: check what it needs
                        if paths[soname] not in objects:
                            objects.append(paths[soname])
                        continue
                    package = self.package_of(dpkg, paths[soname])
                    self.assertIn(package, installs | BASE_PACKAGES,
                                  f"{obj} needs {soname} from {package}: add it to the "
                                  "runtime stage's apt-get install")
        # No reverse check ("nothing else"): what the linker keeps depends on
        # the build (an ASan build keeps libmsgpackc.so.2, --as-needed in a
        # plain one drops it), so only -dev packages are refused above.

    @staticmethod
    def package_of(dpkg, path):
        """The Debian package owning path, whichever of /lib and /usr/lib it
        was registered under (usrmerge)."""
        real = os.path.realpath(path)
        candidates = [path, real]
        for p in (path, real):
            candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
        for candidate in candidates:
            p = subprocess.run([dpkg, "-S", candidate], capture_output=True, text=True)
            if p.returncode == 0:
                return p.stdout.split(":")[0].split(",")[0].strip()
        raise AssertionError(f"no Debian package owns {path}")


class Entrypoint(unittest.TestCase):
    def run_entrypoint(self, *args):
        with tempfile.TemporaryDirectory() as bindir:
            for program in PROGRAMS + ("redis-server",):
                stub = os.path.join(bindir, program)
                with open(stub, "w") as f:
                    f.write(f'#!/bin/sh\necho {program} "$@"\n')
                os.chmod(stub, 0o755)
            env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
            p = subprocess.run(["/bin/sh", os.path.join(DOCKER, "entrypoint.sh"), *args],
                               capture_output=True, text=True, env=env, timeout=10)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.strip()

    def test_the_command_picks_the_program(self):
        self.assertEqual(self.run_entrypoint("tridentd", "--redis", "redis://r:6379/0"),
                         "tridentd --redis redis://r:6379/0")
        self.assertEqual(self.run_entrypoint("trident-worker", "-q", "a,b"),
                         "trident-worker -q a,b")
        self.assertEqual(self.run_entrypoint("trident", "--version"), "trident --version")
        self.assertEqual(self.run_entrypoint("redis-server", "--appendonly", "yes"),
                         "redis-server --appendonly yes")

    def test_options_alone_go_to_tridentd(self):
        self.assertEqual(self.run_entrypoint("--listen", "0.0.0.0:7878"),
                         "tridentd --listen 0.0.0.0:7878")
        self.assertEqual(self.run_entrypoint(), "tridentd")

    def test_the_dockerfile_runs_it(self):
        instructions = dockerfile_stages()[-1]["instructions"]
        copies = " ".join(args for kw, args in instructions if kw == "COPY")
        entry = [args for kw, args in instructions if kw == "ENTRYPOINT"][-1]
        self.assertIn("deploy/docker/entrypoint.sh /usr/local/bin/trident-entrypoint", copies)
        self.assertIn("/usr/local/bin/trident-entrypoint", entry)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: test_compose.py TRIDENTD TRIDENT_WORKER TRIDENT")
    BINARIES.update(zip(PROGRAMS, sys.argv[1:]))
    unittest.main(argv=sys.argv[:1], verbosity=2)
