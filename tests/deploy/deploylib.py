"""Helpers for the deploy tests: the daemons' settings, and whether they load.

    help_options(binary)      the settings a daemon lists in --help
    table_names(settings_c)   the option names of a config table in C source
    check_loads(binary, ...)  whether a config file and environment load
    parse_duration(text)      "1m30s" / "30s" / "500ms" -> milliseconds

How a load is proven: tridentd and trident-worker stop at --help before
reading any config file (config_load returns as soon as it sees --help), and
have no --check-config flag. But their main() does three things in a fixed
order: load every setting (defaults, file, environment, flags, then their own
checks of the whole, in settings_load), return on --help, then open the log
file. So the test runs the daemon with the file (and environment) under test
plus --log-file in a directory that does not exist: exit 1 with "cannot open
log file" proves that everything loaded and that nothing was started (no
socket, no Redis, no fork); a bad setting exits 2 naming the file and line.
A 10 s timeout catches a daemon that got past the log file after all.
"""
import os
import re
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")

# "  -l, --listen TEXT   help [default 127.0.0.1:7878, repeatable]"
# "      password TEXT   help [config file or environment only]"
_HELP_LINE = re.compile(r"^  (?:-., |    )(?:--)?(?:\[no-\])?([a-z][a-z0-9-]*)(.*)$")
_NOTES = re.compile(r"\[([^\[\]]*)\]$")


def clean_env(extra=None):
    """The test's environment without any TRIDENT_* variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
    env.update(extra or {})
    return env


def help_options(binary):
    """{name: default or None} for every setting `binary --help` lists."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10,
                         env=clean_env(), check=True).stdout
    options = {}
    for line in out.splitlines():
        m = _HELP_LINE.match(line)
        if not m or m.group(1) == "help":
            continue
        default = None
        notes = _NOTES.search(m.group(2).rstrip())
        if notes:
            for note in notes.group(1).split(", "):
                if note.startswith("default "):
                    default = note[len("default "):]
        options[m.group(1)] = default
    return options


def table_names(settings_c, table):
    """The option names of `const config_option TABLE[]` in settings_c, read
    from the source: a cross-check that --help lists the whole table."""
    with open(settings_c) as f:
        text = f.read()
    start = text.index(f"config_option {table}[]")
    body = text[start:text.index("};", start)]
    return re.findall(r'^\s*\{ "([a-z0-9-]+)", CONFIG_', body, re.M)


def check_loads(binary, config=None, env=None):
    """Runs binary with config (a path or None) and env (extra variables) so
    that it stops right after loading its settings (see the module's doc).
    Returns (ok, output): ok is True when the settings loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [binary]
        if config:
            args += ["--config", config]
        args += ["--log-file", os.path.join(tmp, "missing", "log")]
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=tmp,
                               env=clean_env(env))
        except subprocess.TimeoutExpired:
            return False, "still running after 10 s: it got past opening its log file"
        output = p.stdout + p.stderr
        return p.returncode == 1 and "cannot open log file" in output, \
            f"exit {p.returncode}: {output.strip()}"


_DURATION = re.compile(r"(\d+)(ms|h|m|s)")
_UNIT_MS = {"h": 3600000, "m": 60000, "s": 1000, "ms": 1}


def parse_duration(text):
    """Milliseconds in "1m30s", "30s", "500ms" or a bare number of seconds
    (compose and systemd style; "min" as systemd writes minutes)."""
    text = str(text).strip().replace("min", "m")
    if text.isdigit():
        return int(text) * 1000
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)
