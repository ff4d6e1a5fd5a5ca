"""The example configs deploy/config/tridentd.conf and worker.conf against
the config tables of the daemons.

    test_configs.py TRIDENTD TRIDENT_WORKER

For each example:
  - every setting the daemon's --help lists (its whole config table; checked
    against the table in the C source too) appears as a "name = value" line,
    commented out or not. `config` is the exception: a config file may not
    name one (config_load refuses it), so the example says --config instead;
  - every "# name = value" line names a real setting, so a renamed or
    removed setting cannot linger as a stale comment;
  - a commented-out line of a setting that has a default shows exactly that
    default (what --help prints), so the example cannot drift from the code;
  - the file loads as it is, and again with every commented-out line
    uncommented (the password-file example then names a file the test
    writes), by the method in deploylib.check_loads. Two broken copies show
    that the method catches a bad file.
"""
import os
import re
import sys
import tempfile
import unittest

import deploylib

BINARIES = {}
EXAMPLES = {
    "tridentd": ("tridentd.conf", "server/settings.c", "settings_table"),
    "trident-worker": ("worker.conf", "worker/settings.c", "worker_settings_table"),
}
# "# name = value": a setting commented out. Prose never starts "word = ".
COMMENTED = re.compile(r"^# ?([a-z][a-z0-9-]*) = (.*)$")
ACTIVE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*(?:=\s*)?(.*)$")


def read_example(program):
    path = os.path.join(deploylib.DEPLOY, "config", EXAMPLES[program][0])
    with open(path) as f:
        return path, f.read().splitlines()


def settings_in(lines):
    """[(lineno, name, value, commented)] of the example's setting lines."""
    found = []
    for n, line in enumerate(lines, 1):
        m = COMMENTED.match(line)
        if m:
            found.append((n, m.group(1), m.group(2).strip(), True))
        elif line.strip() and not line.lstrip().startswith("#"):
            m = ACTIVE.match(line)
            found.append((n, m.group(1), m.group(2).strip(), False))
    return found


class ExampleConfigs(unittest.TestCase):
    """Each test checks both examples, one subTest per program."""

    def test_help_lists_the_whole_table(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                _, source, table = EXAMPLES[program]
                names = deploylib.table_names(os.path.join(deploylib.REPO, source), table)
                self.assertGreater(len(names), 10, f"{table} not found in {source}")
                self.assertEqual(sorted(deploylib.help_options(binary)), sorted(names),
                                 f"{program} --help and {table} list different settings")

    def test_every_setting_appears(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, lines = read_example(program)
                named = {name for _, name, _, _ in settings_in(lines)}
                missing = sorted(set(deploylib.help_options(binary)) - named - {"config"})
                self.assertEqual(missing, [], f"{path} does not list these settings")
                self.assertNotIn("config", named, f"{path}: a config file cannot name another")
                self.assertIn("--config", "\n".join(lines), f"{path} should say how it is read")

    def test_every_line_names_a_setting(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, lines = read_example(program)
                options = deploylib.help_options(binary)
                for n, name, _, _ in settings_in(lines):
                    self.assertTrue(name in options,
                                    f"{path}:{n}: '{name}' is not a {program} setting")

    def test_commented_lines_show_the_defaults(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, lines = read_example(program)
                options = deploylib.help_options(binary)
                for n, name, value, commented in settings_in(lines):
                    if commented and options.get(name) is not None:
                        self.assertEqual(value, options[name],
                                         f"{path}:{n}: {name} shows {value!r}, its default is "
                                         f"{options[name]!r}")

    def test_loads_as_it_is(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, _ = read_example(program)
                ok, output = deploylib.check_loads(binary, path)
                self.assertTrue(ok, f"{program} --config {path}: {output}")

    def test_loads_with_every_line_uncommented(self):
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, lines = read_example(program)
                with tempfile.TemporaryDirectory() as tmp:
                    secret = os.path.join(tmp, "password")
                    with open(secret, "w") as f:
                        f.write("s3cret\n")
                    out = []
                    for line in lines:
                        m = COMMENTED.match(line)
                        if m and m.group(1) == "password-file":
                            line = f"password-file = {secret}"
                        elif m:
                            line = line.lstrip("# ")
                        out.append(line)
                    copy = os.path.join(tmp, os.path.basename(path))
                    with open(copy, "w") as f:
                        f.write("\n".join(out) + "\n")
                    ok, output = deploylib.check_loads(binary, copy)
                    self.assertTrue(ok, f"{program} --config {copy} (all uncommented): {output}")

    def test_the_load_check_catches_a_bad_file(self):
        """Without this, a check_loads that always said yes would pass."""
        bad_lines = {
            "an unknown setting": "no-such-setting = 1",
            "a value out of range": "verbose = 9",
        }
        for program, binary in BINARIES.items():
            with self.subTest(program=program):
                path, lines = read_example(program)
                for what, bad in bad_lines.items():
                    with tempfile.TemporaryDirectory() as tmp:
                        copy = os.path.join(tmp, "bad.conf")
                        with open(copy, "w") as f:
                            f.write("\n".join(lines + [bad]) + "\n")
                        ok, output = deploylib.check_loads(binary, copy)
                        self.assertFalse(ok, f"{program} loaded a file with {what}")
                        self.assertIn(f"bad.conf:{len(lines) + 1}:", output,
                                      f"{program}: the error should name the line with {what}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: test_configs.py TRIDENTD TRIDENT_WORKER")
    BINARIES["tridentd"], BINARIES["trident-worker"] = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
