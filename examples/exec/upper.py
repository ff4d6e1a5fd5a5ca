#!/usr/bin/env python3
"""upper: an example exec handler for trident-worker.

Run it with  trident-worker --exec upper=/path/to/upper.py ...

The contract of an exec handler, in any language:
  - the task's payload arrives on stdin (read it to the end);
  - TRIDENT_TASK_ID, TRIDENT_TASK_NAME, TRIDENT_TASK_ATTEMPT and
    TRIDENT_TASK_DEADLINE_MS (unix ms, 0 if none) are in the environment,
    and TMPDIR is a scratch directory that the worker removes;
  - what goes to stdout is the result, if the program exits 0;
  - any other exit is a failure, whose message carries the exit status and
    the tail of stderr; the task may be tried again;
  - at its time limit or on cancel the program's process group gets
    SIGTERM, then SIGKILL after the worker's kill grace.

This one writes its input upper-cased (UTF-8; bytes that are not valid
UTF-8 pass through unchanged). Empty input is a failure: exit status 3.
"""
import os
import sys

EXIT_EMPTY = 3


def main() -> int:
    data = sys.stdin.buffer.read()
    if not data:
        task = os.environ.get("TRIDENT_TASK_ID", "?")
        print(f"upper: task {task}: empty input, nothing to upper-case", file=sys.stderr)
        return EXIT_EMPTY
    text = data.decode("utf-8", "surrogateescape")
    sys.stdout.buffer.write(text.upper().encode("utf-8", "surrogateescape"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
