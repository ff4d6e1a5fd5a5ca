#!/usr/bin/python3
"""Interop test: docs/PROTOCOL.md against the C codec in proto/.

    /usr/bin/python3 test_interop.py PROTO_TOOL PROTOCOL.md

The reference is the document. Key names, key types, required keys, limits
and the worked example are read from PROTOCOL.md at run time; the C side is
only observed through proto_tool (see proto_tool.c). The msgpack
implementation on the Python side is Debian's python3-msgpack, which shares
no code with proto/.

  Part 0  the document parses into the tables the rest relies on.
  Part 1  Python -> C: a message for every op in both directions, using every
          key the document lists for it, decoded by `proto_tool decode`.
  Part 2  error cases, limits, nil, unknown and duplicate keys, framing.
  Part 3  C -> Python: the frames of `proto_tool encode`, checked against the
          document (and decoded back by proto_tool).
  Part 4  the worked example of section 8, bytes taken from the document.

A decode is compared with the document exactly: the keys the op uses, with the
values sent (bin as hex, the raw bytes of `stats`/`info`), no nil-valued or
unknown key, no default filled in. The one latitude: a known key that the op
does not use is "type-checked, then ignored" (2.2), so the decoder may report
it or not, but if it does, with the value sent.

Prints one line per failed check and, last, "N passed, M failed".
"""

import json
import re
import struct
import subprocess
import sys
import time
from datetime import datetime, timezone

try:
    import msgpack
except ImportError:  # pragma: no cover
    sys.exit("test_interop.py: python3-msgpack is missing (run with /usr/bin/python3)")


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.part = ""

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL [{self.part}] {what}" + (f"\n     {detail}" if detail else ""))
        return ok


R = Results()
ANY = object()  # "do not check this" marker (an ERROR's rid, for instance)


# --------------------------------------------------------------------------
# msgpack building blocks: values whose exact encoding we choose
# --------------------------------------------------------------------------

class I:
    """An integer packed with a forced msgpack encoding."""
    FORMS = {"u8": (0xCC, ">B"), "u16": (0xCD, ">H"), "u32": (0xCE, ">I"), "u64": (0xCF, ">Q"),
             "i8": (0xD0, ">b"), "i16": (0xD1, ">h"), "i32": (0xD2, ">i"), "i64": (0xD3, ">q")}

    def __init__(self, value, form):
        self.value, self.form = value, form

    def encode(self):
        tag, fmt = self.FORMS[self.form]
        return bytes([tag]) + struct.pack(fmt, self.value)


class S:
    """A msgpack str holding exactly these bytes (UTF-8 or not); form: fix/8/16/32."""

    def __init__(self, data, form=None):
        self.data = data if isinstance(data, bytes) else data.encode()
        self.form = form

    def encode(self):
        n, form = len(self.data), self.form
        if form is None:
            form = "fix" if n < 32 else "8" if n < 256 else "16" if n < 65536 else "32"
        head = {"fix": lambda: bytes([0xA0 | n]), "8": lambda: b"\xd9" + struct.pack(">B", n),
                "16": lambda: b"\xda" + struct.pack(">H", n),
                "32": lambda: b"\xdb" + struct.pack(">I", n)}[form]()
        return head + self.data


class B:
    """A msgpack bin with a forced length form: 8/16/32."""

    def __init__(self, data, form):
        self.data, self.form = data, form

    def encode(self):
        tag, fmt = {"8": (0xC4, ">B"), "16": (0xC5, ">H"), "32": (0xC6, ">I")}[self.form]
        return bytes([tag]) + struct.pack(fmt, len(self.data)) + self.data


class F32:
    def __init__(self, value):
        self.value = value

    def encode(self):
        return b"\xca" + struct.pack(">f", self.value)


class Arr:
    """An array with a forced header form: fix/16/32 (None = shortest)."""

    def __init__(self, items, form=None):
        self.items, self.form = list(items), form

    def encode(self):
        return container_head(len(self.items), self.form, 0x90, 0xDC, 0xDD) + \
            b"".join(enc(v) for v in self.items)


class Pairs:
    """A map given as a list of (key, value) pairs: keys may repeat or be of any type."""

    def __init__(self, pairs, form=None):
        self.pairs, self.form = list(pairs), form

    def encode(self):
        return container_head(len(self.pairs), self.form, 0x80, 0xDE, 0xDF) + \
            b"".join(enc(k) + enc(v) for k, v in self.pairs)


class Raw:
    """Verbatim msgpack bytes."""

    def __init__(self, data):
        self.data = data

    def encode(self):
        return self.data


def container_head(n, form, fix, h16, h32):
    if form is None:
        form = "fix" if n < 16 else "16" if n < 65536 else "32"
    if form == "fix":
        return bytes([fix | n])
    return bytes([h16]) + struct.pack(">H", n) if form == "16" else bytes([h32]) + struct.pack(">I", n)


def enc(v):
    """msgpack bytes of v: our wrappers as forced, everything else by python-msgpack."""
    if isinstance(v, (I, S, B, F32, Arr, Pairs, Raw)):
        return v.encode()
    if isinstance(v, dict):
        return Pairs(v.items()).encode()
    if isinstance(v, (list, tuple)):
        return Arr(v).encode()
    return msgpack.packb(v, use_bin_type=True)


def frame(body):
    """One frame per section 2.1: 4-byte big-endian body length, then the body."""
    return struct.pack(">I", len(body)) + body


def mframe(msg):
    return frame(enc(msg))


def pairs_of(msg):
    return msg.pairs if isinstance(msg, Pairs) else list(msg.items())


# --------------------------------------------------------------------------
# A small msgpack scanner of our own (for spans and the shortest-integer rule)
# --------------------------------------------------------------------------

def scan(data, pos, on_int=None):
    """Returns the end of the msgpack object at pos; calls on_int(value, size)."""
    b = data[pos]

    def n_at(fmt, at):
        return struct.unpack_from(fmt, data, at)[0]

    def seq(count, p, per):
        for _ in range(count * per):
            p = scan(data, p, on_int)
        return p

    if b <= 0x7F or b >= 0xE0:
        if on_int:
            on_int(b if b <= 0x7F else b - 0x100, 1)
        return pos + 1
    if 0x80 <= b <= 0x8F:
        return seq(b & 0x0F, pos + 1, 2)
    if 0x90 <= b <= 0x9F:
        return seq(b & 0x0F, pos + 1, 1)
    if 0xA0 <= b <= 0xBF:
        return pos + 1 + (b & 0x1F)
    if b in (0xC0, 0xC2, 0xC3):
        return pos + 1
    if b in (0xC4, 0xD9):
        return pos + 2 + data[pos + 1]
    if b in (0xC5, 0xDA):
        return pos + 3 + n_at(">H", pos + 1)
    if b in (0xC6, 0xDB):
        return pos + 5 + n_at(">I", pos + 1)
    if b == 0xC7:
        return pos + 3 + data[pos + 1]
    if b == 0xC8:
        return pos + 4 + n_at(">H", pos + 1)
    if b == 0xC9:
        return pos + 6 + n_at(">I", pos + 1)
    if b == 0xCA:
        return pos + 5
    if b == 0xCB:
        return pos + 9
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if b in ints:
        size = struct.calcsize(ints[b])
        if on_int:
            on_int(n_at(ints[b], pos + 1), 1 + size)
        return pos + 1 + size
    if 0xD4 <= b <= 0xD8:
        return pos + 2 + (1 << (b - 0xD4))
    if b == 0xDC:
        return seq(n_at(">H", pos + 1), pos + 3, 1)
    if b == 0xDD:
        return seq(n_at(">I", pos + 1), pos + 5, 1)
    if b == 0xDE:
        return seq(n_at(">H", pos + 1), pos + 3, 2)
    if b == 0xDF:
        return seq(n_at(">I", pos + 1), pos + 5, 2)
    raise ValueError(f"never-used byte 0x{b:02x} at {pos}")


def top_spans(body):
    """[(key_bytes, value_start, value_end)] of the top-level map of body."""
    b = body[0]
    if 0x80 <= b <= 0x8F:
        n, p = b & 0x0F, 1
    elif b == 0xDE:
        n, p = struct.unpack_from(">H", body, 1)[0], 3
    else:
        n, p = struct.unpack_from(">I", body, 1)[0], 5
    out = []
    for _ in range(n):
        k_end = scan(body, p)
        v_end = scan(body, k_end)
        out.append((body[p:k_end], k_end, v_end))
        p = v_end
    return out


def shortest_int_size(v):
    if -32 <= v <= 127:
        return 1
    if 0 <= v <= 0xFF or -0x80 <= v < 0:
        return 2
    if 0 <= v <= 0xFFFF or -0x8000 <= v < 0:
        return 3
    if 0 <= v <= 0xFFFFFFFF or -0x80000000 <= v < 0:
        return 5
    return 9


# --------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------

TYPE_NAMES = None  # filled from the document's type table


def ticks(cell):
    return re.findall(r"`([^`]+)`", cell)


def num(s):
    return int(s.replace(",", ""))


class Doc:
    """What the tests need from PROTOCOL.md, read from its headings and tables."""

    def __init__(self, text):
        self.text = text
        self.lines = text.splitlines()
        self.ops = {}            # (side, op) -> {"required": [...]}  side: broker|peer
        self.keys = {}           # (side, op) -> {key: type}   (besides op; rid added below)
        self.req_rows = {}       # (op, key) -> request-table row dict
        self.reply_keys = {}     # request op -> {key: type}  (its OK reply)
        self.reply_rows = {}     # (op, key) -> reply/push-table row dict
        self.push_rows = {}      # (op, key) -> push row
        self.general_reply = {}  # key -> type (section 3)
        self.types = []
        self.semantic = []       # semantic limit rows
        self.decoder = {}        # decoder limit name -> row
        self.request_errors = []
        self.task_errors = []
        self._parse()

    # ---- tables -----------------------------------------------------------
    def tables(self):
        heading, section, para, i = "", "", "", 0
        while i < len(self.lines):
            line = self.lines[i]
            if line.startswith("## "):
                section = heading = line[3:].strip()
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
            if line.startswith("|"):
                rows = []
                while i < len(self.lines) and self.lines[i].startswith("|"):
                    cells = [c.strip() for c in self.lines[i].strip().strip("|").split("|")]
                    if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                        rows.append(cells)
                    i += 1
                head = [h.lower() for h in rows[0]]
                yield section, heading, para, head, [dict(zip(head, r)) for r in rows[1:]]
                para = ""
                continue
            if line.strip():
                para = line.strip()
            i += 1

    def _parse(self):
        global TYPE_NAMES
        for section, heading, para, head, rows in self.tables():
            first = head[0]
            if first == "op" and "direction" in head:
                for r in rows:
                    side = "broker" if "→ broker" in r["direction"] else "peer"
                    for op in [o.strip() for o in r["op"].split(",")]:
                        self.ops[(side, op)] = {"required": ticks(r["required keys"]),
                                                "direction": r["direction"]}
            elif first == "type" and "msgpack" in head:
                self.types = [ticks(r["type"])[0] for r in rows]
            elif first == "what":
                self.semantic = rows
            elif first == "limit":
                self.decoder = {r["limit"]: r for r in rows}
            elif first == "code" and "connection" in head:
                self.request_errors = [ticks(r["code"])[0] for r in rows]
            elif first == "code" and "set by" in head:
                self.task_errors = [ticks(r["code"])[0] for r in rows]
            elif first == "reply key":
                self.general_reply = {ticks(r["reply key"])[0]: r["type"] for r in rows}
            elif first == "key":
                self._key_table(section, heading, head, rows)
        TYPE_NAMES = self.types

    def _key_table(self, section, heading, head, rows):
        if section.startswith("4."):
            ops, kind = ["HELLO"], "request" if "required / default" in head else "reply"
        else:
            name = re.sub(r"\s*\(.*\)$", "", heading)
            ops = [o.strip() for o in name.split(",")]
            if "(broker →" in heading:
                kind = "push"
            else:
                kind = "request" if "required / default" in head else "reply"
        for r in rows:
            for key in ticks(r["key"]):
                typ = r["type"]
                if typ.startswith("as in "):
                    typ = self.req_rows[(typ[6:].strip(), key)]["type"]
                for op in ops:
                    if kind == "request":
                        self.keys.setdefault(("broker", op), {})[key] = typ
                        self.req_rows[(op, key)] = r
                    elif kind == "reply":
                        self.reply_keys.setdefault(op, {})[key] = typ
                        self.reply_rows[(op, key)] = r
                    else:
                        self.keys.setdefault(("peer", op), {})[key] = typ
                        self.push_rows[(op, key)] = r

    # ---- derived views ----------------------------------------------------
    def finish(self):
        """Keys per (side, op), the task-map keys, and the global key registry."""
        for (side, op) in self.ops:
            self.keys.setdefault((side, op), {})
        for (side, op), tab in self.keys.items():
            if side == "broker":
                tab["rid"] = "uint"  # section 3: every request carries op and rid
        ok = {"rid": self.general_reply["rid"]}
        for tab in self.reply_keys.values():
            ok.update(tab)
        self.keys[("peer", "OK")] = ok
        self.keys[("peer", "ERROR")] = dict(self.general_reply)
        # SUBMIT_BATCH: "Each element of `tasks` is a map with any of the SUBMIT task keys: ..."
        para = self.paragraph_starting("Each element of `tasks`")
        names = ticks(para.split("Other keys")[0])
        self.batch_task_keys = {k: self.keys[("broker", "SUBMIT")][k] for k in names if k != "tasks"}
        # DEAD_LIST reply: "each with the keys of a GET reply except `message` ..."
        self.dead_task_keys = dict(self.reply_keys["GET"])
        row = next(l for l in self.lines if l.startswith("| `tasks` | array of map | the dead tasks"))
        if " except " in row:
            for k in ticks(row.split(" except ", 1)[1].split("(")[0]):
                self.dead_task_keys.pop(k, None)
        self.registry = {}
        self.conflicts = []
        for tab in list(self.keys.values()) + list(self.reply_keys.values()):
            for k, t in tab.items():
                if self.registry.setdefault(k, t) != t:
                    self.conflicts.append((k, self.registry[k], t))

    def paragraph_starting(self, prefix):
        for i, line in enumerate(self.lines):
            if line.startswith(prefix):
                out = []
                while i < len(self.lines) and self.lines[i].strip():
                    out.append(self.lines[i])
                    i += 1
                return " ".join(out)
        raise KeyError(prefix)

    def task_keys(self, side):
        return self.batch_task_keys if side == "broker" else self.dead_task_keys

    def max_frame(self):
        return num(re.search(r"defaults to [^(]*\(([\d,]+) bytes\)", self.text).group(1))

    def max_depth(self):
        return int(re.search(r"at most (\d+) deep", self.decoder["nesting depth"]["value"]).group(1))

    def max_values(self):
        return num(re.search(r"([\d,]{5,})", self.decoder["values per frame"]["value"]).group(1))

    def max_str(self):
        return num(re.search(r"\(([\d,]+) bytes\)", self.decoder["one str value"]["value"]).group(1))

    def limits(self):
        """Semantic limits as dicts: what, keys, elem_keys, lo, hi, chars, forbid."""
        out = []
        for r in self.semantic:
            keys_cell, rule = r["keys"], r["rule"]
            direct, _, elems = keys_cell.partition("each element of")
            lim = {"what": r["what"], "keys": ticks(direct), "elem_keys": ticks(elems),
                   "lo": None, "hi": None, "chars": None, "forbid": []}
            m = re.search(r"(-?[\d,]+)\s*(?:to|\.\.)\s*(-?[\d,]+)", rule)
            if m:
                lim["lo"], lim["hi"] = num(m.group(1)), num(m.group(2))
            m = re.search(r"at most ([\d,]+)", rule)
            if m and "max_payload" not in rule:
                lim["lo"], lim["hi"] = 0, num(m.group(1))
            m = re.search(r"0x([0-9a-f]{2})\.\.0x([0-9a-f]{2})", rule)
            if m:
                lim["chars"] = (int(m.group(1), 16), int(m.group(2), 16))
            m = re.search(r"no (.*)$", rule)
            if m:
                lim["forbid"] = [t for t in ticks(m.group(1)) if len(t) == 1]
            if "max_payload" in rule:
                continue  # PAYLOAD_TOO_LARGE depends on configuration, not on the decoder
            out.append(lim)
        return out


# --------------------------------------------------------------------------
# Expectations from the document
# --------------------------------------------------------------------------

def as_bytes(v):
    if isinstance(v, S):
        return v.data
    if isinstance(v, B):
        return v.data
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bytes):
        return v
    raise TypeError(v)


def as_text(v):
    """proto_tool prints a str byte for byte, bytes >= 0x7f as \\u00XX: latin-1."""
    return as_bytes(v).decode("latin-1")


def as_int(v):
    return v.value if isinstance(v, I) else v


def items(v):
    return v.items if isinstance(v, Arr) else list(v)


class Expect:
    def __init__(self, doc):
        self.doc = doc

    def value(self, v, typ, side):
        if typ in ("uint", "int"):
            return as_int(v)
        if typ == "bool":
            return v
        if typ == "str":
            return as_text(v)
        if typ == "bin":
            return {"bin": as_bytes(v).hex()}
        if typ == "array of str":
            return [as_text(e) for e in items(v)]
        if typ == "array of uint":
            return [as_int(e) for e in items(v)]
        if typ == "array of map":
            return [self.fields_of(pairs_of(e), self.doc.task_keys(side), side) for e in items(v)]
        if typ == "map":
            return {"raw": enc(v).hex()}
        raise ValueError(typ)

    def fields_of(self, pairs, table, side, optional=None):
        """The fields the decoder must report for these pairs (nil and unknown keys: absent).

        A known key the op does not use is "type-checked, then ignored" (2.2): whether the
        decoder keeps it is not the document's business, so it goes to `optional`, typed.
        """
        out = {}
        for k, v in pairs:
            if not isinstance(k, str) or k == "op" or v is None:
                continue
            if k in table:
                out[k] = self.value(v, table[k], side)
            elif k in self.doc.registry and optional is not None:
                optional[k] = self.value(v, self.doc.registry[k], side)
        return out

    def message(self, side, msg):
        """The decode line the document promises for msg (a dict or Pairs)."""
        pairs = pairs_of(msg)
        op = dict(pairs)["op"]
        op = as_text(op) if isinstance(op, S) else op
        optional = {}
        table = self.doc.keys[(side, op)]
        fields = self.fields_of(pairs, table, side, optional)
        want = {"op": op, "fields": fields, "optional": optional}
        tasks = dict(pairs).get("tasks")
        if "tasks" in fields and table.get("tasks") == "array of map":
            want["task_optional"] = []
            for e in items(tasks):  # a task map's other known keys are ignored too
                opt = {}
                self.fields_of(pairs_of(e), self.doc.task_keys(side), side, opt)
                want["task_optional"].append(opt)
        return want


class Err:
    """An expected refusal: code, and optionally the key its message names and the rid."""

    def __init__(self, code, key=None, rid=ANY):
        self.code, self.key, self.rid = code, key, rid

    def __repr__(self):
        return f"ERROR {self.code}" + (f" naming '{self.key}'" if self.key else "") + \
            ("" if self.rid is ANY else f" rid={self.rid}")


class Accepted:
    """Only that the frame decodes, as this op (its content is checked elsewhere)."""

    def __init__(self, op):
        self.op = op

    def __repr__(self):
        return f"a decode of {self.op}"


class Either:
    def __init__(self, *options):
        self.options = options

    def __repr__(self):
        return " or ".join(repr(o) for o in self.options)


def mismatch(got, want):
    """None if the decode line `got` matches `want`, else a description."""
    if isinstance(want, Either):
        problems = [mismatch(got, w) for w in want.options]
        return None if None in problems else "; ".join(problems)
    if isinstance(want, Accepted):
        ok = "error" not in got and got.get("op") == want.op
        return None if ok else f"expected {want!r}, got {short(got)}"
    if isinstance(want, Err):
        if "error" not in got:
            return f"expected {want!r}, decoded {short(got)}"
        if got["error"] != want.code:
            return f"expected {want!r}, got {got['error']} ({got.get('message')!r})"
        if want.key and f"'{want.key}'" not in got.get("message", ""):
            return f"message {got.get('message')!r} does not name '{want.key}'"
        if want.rid is not ANY and got.get("rid") != want.rid:
            return f"rid: expected {want.rid}, got {got.get('rid')}"
        return None
    if "error" in got:
        return f"expected a decode of {want['op']}, got {got['error']}: {got.get('message')!r}"
    f_got, f_want, optional = got.get("fields", {}), want["fields"], want.get("optional", {})
    diff = []
    if got.get("op") != want["op"]:
        diff.append(f"op {got.get('op')!r} != {want['op']!r}")
    if set(got) - {"op", "fields"}:
        diff.append(f"unexpected members {sorted(set(got) - {'op', 'fields'})}")
    for k in sorted(set(f_got) | set(f_want)):
        if k not in f_got:
            diff.append(f"missing {k}={short(f_want[k])}")
        elif k not in f_want and k in optional:
            if f_got[k] != optional[k]:
                diff.append(f"ignored key {k}: got {short(f_got[k])}, sent {short(optional[k])}")
        elif k not in f_want:
            diff.append(f"unexpected {k}={short(f_got[k])}")
        elif k == "tasks" and "task_optional" in want and isinstance(f_got[k], list) \
                and len(f_got[k]) == len(f_want[k]):
            for i, (g, w, o) in enumerate(zip(f_got[k], f_want[k], want["task_optional"])):
                problem = mismatch({"op": "", "fields": g}, {"op": "", "fields": w, "optional": o})
                if problem:
                    diff.append(f"tasks[{i}]: {problem}")
        elif f_got[k] != f_want[k]:
            diff.append(f"{k}: got {short(f_got[k])}, doc says {short(f_want[k])}")
    return "; ".join(diff) or None


def short(v, n=160):
    s = json.dumps(v, default=repr) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------
# Running proto_tool
# --------------------------------------------------------------------------

TOOL = None


def tool(args, data=b""):
    p = subprocess.run([TOOL] + args, input=data, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"proto_tool {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
    return p.stdout


def decode(side, stream):
    out = tool(["decode", side], stream).decode("utf-8")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Case:
    """Frames fed to `proto_tool decode side`, and one expectation per output line."""

    def __init__(self, label, side, frames, expects, alone=False):
        self.label, self.side, self.alone = label, side, alone
        self.frames = frames if isinstance(frames, list) else [frames]
        self.expects = expects if isinstance(expects, list) else [expects]


def run_cases(cases):
    """Streams the cases of a side through one process (closing ones alone)."""
    def judge(case, lines):
        if len(lines) != len(case.expects):
            R.check(False, f"{case.label}: {len(case.expects)} output line(s)",
                    f"got {len(lines)}: {[short(line) for line in lines]}")
            return
        for i, (got, want) in enumerate(zip(lines, case.expects)):
            problem = mismatch(got, want)
            suffix = f" (frame {i + 1})" if len(case.expects) > 1 else ""
            R.check(problem is None, f"{case.label}{suffix}", problem or "")

    for side in ("broker", "peer"):
        streamed = [c for c in cases if c.side == side and not c.alone]
        lines = decode(side, b"".join(f for c in streamed for f in c.frames)) if streamed else []
        if len(lines) == sum(len(c.expects) for c in streamed):
            pos = 0
            for c in streamed:
                judge(c, lines[pos:pos + len(c.expects)])
                pos += len(c.expects)
        else:  # out of step: run each case by itself to say which one
            for c in streamed:
                judge(c, decode(side, b"".join(c.frames)))
        for c in cases:
            if c.side == side and c.alone:
                judge(c, decode(side, b"".join(c.frames)))


# --------------------------------------------------------------------------
# Part 0: the document
# --------------------------------------------------------------------------

REQUEST_OPS = ["HELLO", "PING", "SUBMIT", "SUBMIT_BATCH", "GET", "CANCEL", "STATS", "INFO",
               "PAUSE", "RESUME", "PURGE", "DEAD_LIST", "DEAD_RETRY", "DEAD_PURGE",
               "CREDIT", "ACK", "FAIL", "HEARTBEAT", "PROGRESS"]
PEER_OPS = ["OK", "ERROR", "TASK", "CANCEL", "RESULT", "SHUTDOWN"]


def part0(doc):
    R.part = "0 doc"
    got_req = sorted(op for s, op in doc.ops if s == "broker")
    got_peer = sorted(op for s, op in doc.ops if s == "peer")
    R.check(got_req == sorted(REQUEST_OPS), "ops table: the request ops", f"{got_req}")
    R.check(got_peer == sorted(PEER_OPS), "ops table: the broker-sent ops", f"{got_peer}")
    R.check(not doc.conflicts, "every key has one type throughout the document", f"{doc.conflicts}")
    for k, t in doc.registry.items():
        R.check(t in doc.types, f"key '{k}' has a type of the type table", t)
    for (side, op) in doc.ops:
        for k in doc.ops[(side, op)]["required"]:
            R.check(k in doc.keys[(side, op)], f"{op} ({side}): required key '{k}' is in its key table")
    for op in REQUEST_OPS:  # the per-op "required" column says the same as the ops table
        col = sorted(k for (o, k), r in doc.req_rows.items()
                     if o == op and r["required / default"].strip() == "required")
        R.check(col == sorted(doc.ops[("broker", op)]["required"]),
                f"{op}: 'required' column agrees with the ops table", f"{col}")
    R.check(len(doc.limits()) >= 8, "semantic limits table parsed", f"{doc.limits()}")
    R.check(doc.max_frame() == 16 * 1024 * 1024, "default max_frame is 16 MiB")


# --------------------------------------------------------------------------
# Part 1: Python -> C, every op, every key
# --------------------------------------------------------------------------

ID = "01M89XTK80B8Y9Y3KHPBA4D2PE"
BLOB = bytes([0x00, 0x01, 0x7F, 0x80, 0xC0, 0xFF, 0x00]) + b"payload\x00\xfe"   # zero and high bytes
STATS = {"queues": [{"name": "default", "ready": 3, "scheduled": 0, "running": I(1, "u16"),
                     "retrying": 0, "dead": 2, "succeeded": 70000, "failed": 5,
                     "cancelled": 1, "paused": False}],
         "workers": [{"worker_id": "w-1", "client": "py/1", "host": "h1", "pid": 4242,
                      "queues": ["default"], "capacity": 4, "credits": 2, "running": 2}],
         "errors": {"QUEUE_FULL": 2, "TIMEOUT": 1},
         "counters": {"submitted": 10, "dispatched": 9, "acked": 8, "failed": 1, "retried": 1,
                      "buried": 0, "duplicates_dropped": 0, "redis_calls": 2 ** 40, "future_key": -1}}
INFO = Pairs([("version", "0.1.0"), ("node", "n-1"), ("pid", 77), ("uptime_ms", I(5, "u64")),
              ("connections", 3),
              ("redis", {"mode": "embedded", "address": "unix:/tmp/r.sock", "connected": True}),
              ("limits", {"max_frame": 16777216, "max_payload": 8388608, "max_connections": 1024}),
              ("newer", 1.5)], form="16")

GET_REPLY = {"id": ID, "queue": "default", "name": "echo", "state": "retrying", "attempt": I(2, "i8"),
             "max_retries": I(1000, "u64"), "priority": I(-1000, "i16"), "created_at": 1795629600000,
             "run_at": I(1795629601000, "u64"), "started_at": 1795629600100,
             "finished_at": 1795629600200, "progress": 100, "message": S(b"caf\xc3\xa9 \xff"),
             "result": BLOB, "error_code": "TIMEOUT", "error": "took too long"}


def messages():
    """(side, message) for every op; each uses every key the document lists for it."""
    broker = [
        {"op": "HELLO", "rid": 1, "version": I(1, "u8"), "role": "client", "client": "myapp-py/1.2",
         "password": S(b"p\x00ss \xff\x80word")},
        {"op": "HELLO", "rid": I(2, "u16"), "version": I(1, "i8"), "role": "worker",
         "client": "worker-py/0.1", "password": "", "worker_id": "w-host1-4242", "host": "host1",
         "pid": I(4242, "u32"), "queues": Arr(["emails", "default", "low"], "16"),
         "weights": [I(3, "u16"), 1, I(1, "i32")], "capacity": I(16, "u64"), "prefetch": I(0, "i16")},
        {"op": "HELLO", "rid": 3, "version": 1, "role": "admin"},
        {"op": "PING", "rid": I(2 ** 64 - 1, "u64")},
        {"op": "PING", "rid": 0},
        {"op": "SUBMIT", "rid": I(4, "u32"), "queue": "emails", "name": "send_welcome", "payload": BLOB,
         "id": "signup-991", "priority": -5, "delay": I(1500, "u16"), "max_retries": I(2, "u8"),
         "timeout": I(30000, "u32"), "result_ttl": 86400000, "push_result": True,
         "wait": I(250, "i16"), "run_at": None, "x-unknown": 1.25},
        {"op": "SUBMIT", "rid": I(5, "i64"), "name": "report{q}", "payload": "text as str \u00e9",
         "priority": I(1000, "u64"), "run_at": I(1795629600000, "u64"), "max_retries": 0,
         "timeout": 0, "result_ttl": 0, "push_result": False, "wait": 0, "queue": "!#$%&'()*+,-./:;<=>?@[\\]^_`|~"},
        {"op": "SUBMIT", "rid": 6, "name": "n", "priority": I(-1000, "i64"), "delay": I(2 ** 64 - 1, "u64"),
         "payload": B(b"", "32")},
        {"op": "SUBMIT_BATCH", "rid": 7, "queue": "images", "name": "resize", "payload": b"\x00default\xff",
         "priority": I(-3, "i8"), "delay": 100, "max_retries": I(5, "u16"), "timeout": 5000,
         "result_ttl": I(60000, "u32"), "push_result": True, "wait": I(10, "u64"),
         "tasks": Arr([
             {"payload": b"img-1\x00\x80"},
             {"queue": "thumbs", "name": "thumb", "payload": B(b"\x00\xff", "16"), "id": "client-key-42",
              "priority": I(7, "i16"), "delay": I(2000, "u32"), "max_retries": I(0, "u64"),
              "timeout": 1, "result_ttl": I(1, "i8")},
             {"run_at": I(1795629600000, "u64"), "priority": -1000},
         ], "16")},
        {"op": "SUBMIT_BATCH", "rid": 8, "run_at": 1795629600000, "tasks": [{"name": "t"}]},
        {"op": "GET", "rid": 9, "id": ID, "wait": I(10000, "u32")},
        {"op": "GET", "rid": 10, "id": S(b"!~id{}", "8")},
        {"op": "CANCEL", "rid": 11, "id": "signup-991"},
        {"op": "STATS", "rid": 12, "queue": S(b"emails", "16")},
        {"op": "STATS", "rid": 13},
        {"op": "INFO", "rid": 14},
        {"op": "PAUSE", "rid": 15, "queue": "default"},
        {"op": "RESUME", "rid": 16, "queue": "default"},
        {"op": "PURGE", "rid": 17, "queue": "default"},
        {"op": "DEAD_LIST", "rid": 18, "queue": "default", "offset": I(100, "u32"), "limit": I(1000, "u16")},
        {"op": "DEAD_RETRY", "rid": 19, "queue": "default", "ids": [ID, "client-key-42"]},
        {"op": "DEAD_PURGE", "rid": 20, "queue": "default", "ids": Arr([ID], "32")},
        {"op": "DEAD_PURGE", "rid": 21, "queue": "default"},
        {"op": "CREDIT", "rid": 22, "credits": I(8, "u8")},
        {"op": "CREDIT", "rid": 23, "credits": I(2 ** 63 - 1, "i64")},
        {"op": "ACK", "rid": 24, "id": ID, "result": b"\x00ok\x00\xff"},
        {"op": "ACK", "rid": 25, "id": ID, "result": S(b"str \xff result")},
        {"op": "ACK", "rid": 26, "id": ID},
        {"op": "FAIL", "rid": 27, "id": "signup-991", "code": "TASK_FAILED",
         "message": S(b"smtp: 421 \xfe\x00 try later"), "retryable": True},
        {"op": "FAIL", "rid": 28, "id": ID, "code": "TIMEOUT", "retryable": False},
        {"op": "FAIL", "rid": 29, "id": ID, "code": "CANCELLED"},
        {"op": "FAIL", "rid": 30, "id": ID, "code": "NO_HANDLER", "message": ""},
        {"op": "HEARTBEAT", "rid": 31, "running": [ID, "client-key-42"], "rss": I(52428800, "u32"),
         "done": I(123456, "i32"), "failed": I(7, "i8")},
        {"op": "HEARTBEAT", "rid": 32, "running": []},
        {"op": "PROGRESS", "rid": 33, "id": "signup-991", "progress": I(100, "u8"), "message": "halfway"},
        {"op": "PROGRESS", "rid": 34, "id": "signup-991", "progress": 0},
    ]
    peer = [
        {"op": "OK", "rid": 1, "version": 1, "server": "tridentd 0.1.0", "node": "n-1",
         "max_frame": I(16777216, "u64"), "max_payload": 16777216, "heartbeat": 1000, "lease": I(10000, "u16")},
        {"op": "OK", "rid": I(2, "u8"), "time": I(1795629600042, "u64")},
        {"op": "OK", "rid": 3, "id": ID, "duplicate": False},
        {"op": "OK", "rid": 4, "ids": [ID, "client-key-42"], "duplicates": [I(1, "u16"), 0]},
        {"op": "OK", "rid": 5, "ids": [ID], "duplicates": []},
        dict({"op": "OK", "rid": 6}, **GET_REPLY),
        {"op": "OK", "rid": 7, "outcome": "running", "state": "cancelled"},
        {"op": "OK", "rid": 8, "stats": STATS},
        {"op": "OK", "rid": 9, "info": INFO},
        {"op": "OK", "rid": 10, "count": I(0, "u32")},
        {"op": "OK", "rid": 11, "tasks": [{k: v for k, v in GET_REPLY.items() if k != "message"}, {"id": "t2", "queue": "q", "name": "n", "state": "dead",
                                                      "attempt": 4, "max_retries": 3, "priority": 0,
                                                      "created_at": 1, "finished_at": 2, "progress": 0,
                                                      "error_code": "TASK_FAILED", "error": "boom"}],
         "total": I(2, "i16")},
        {"op": "OK", "rid": 12, "tasks": [], "total": 0},
        {"op": "OK", "rid": 13, "outcome": "stored"},
        {"op": "OK", "rid": 14, "outcome": "retry", "run_at": 1795629601000},
        {"op": "OK", "rid": 15},
        {"op": "ERROR", "rid": 16, "code": "QUEUE_FULL", "message": "queue 'default' is full ..."},
        {"op": "ERROR", "code": "BAD_FRAME", "message": "malformed"},
        {"op": "TASK", "id": ID, "queue": "default", "name": "sha256", "payload": BLOB,
         "attempt": I(1, "u64"), "timeout": 60000, "deadline": 1795629660000,
         "created_at": I(1795629600000, "u64"), "priority": I(-7, "i32")},
        {"op": "TASK", "id": ID, "queue": "default", "name": "n", "payload": b"", "attempt": 2,
         "timeout": 0, "created_at": 1, "priority": 0},
        {"op": "RESULT", "id": ID, "state": "succeeded", "attempt": 1, "finished_at": 1795629600042,
         "result": b"hello\x00\xff"},
        {"op": "RESULT", "id": ID, "state": "dead", "attempt": I(4, "u8"), "finished_at": 2,
         "error_code": "WORKER_LOST", "error": S(b"lost \xff")},
        {"op": "CANCEL", "id": "signup-991"},
        {"op": "SHUTDOWN", "reason": "broker draining"},
        {"op": "SHUTDOWN"},
    ]
    return [("broker", m) for m in broker] + [("peer", m) for m in peer]


def part1(doc, ex):
    R.part = "1 py->c"
    msgs = messages()
    # Our own encoder's forced forms decode back with python-msgpack (self-check).
    for form, v in [("u8", 200), ("u16", 1), ("u32", 7), ("u64", 2 ** 64 - 1), ("i8", -5), ("i16", 3),
                    ("i32", -70000), ("i64", 2 ** 63 - 1)]:
        R.check(msgpack.unpackb(I(v, form).encode()) == v, f"self-check: {form} packs {v}")
    # Coverage: every op of the ops table, every key of its table.
    for (side, op), tab in sorted(doc.keys.items()):
        if (side, op) not in doc.ops and op != "OK":
            continue
        sent = set()
        for s, m in msgs:
            if s == side and m["op"] == op:
                sent |= set(m)
        R.check(sent, f"coverage: a message for {op} ({side})")
        missing = sorted(set(tab) - sent)
        R.check(not missing, f"coverage: {op} ({side}) uses every documented key", f"not used: {missing}")
        for m in (m for s, m in msgs if s == side and m["op"] == op):
            for k, v in m.items():
                if k == "tasks" and v is not None:
                    for e in items(v):
                        extra = set(e) - set(doc.task_keys(side))
                        R.check(not extra, f"coverage: {op} task map keys are documented", f"{extra}")
    cases = [Case(f"{m['op']} ({side}) #{i}", side, mframe(m), ex.message(side, m))
             for i, (side, m) in enumerate(msgs)]
    run_cases(cases)


# --------------------------------------------------------------------------
# Part 2: errors, limits, nil, unknown and duplicate keys, framing
# --------------------------------------------------------------------------

BASE = {  # the smallest valid message per (side, op): its required keys
    ("broker", "HELLO"): {"version": 1}, ("broker", "SUBMIT"): {"name": "n"},
    ("broker", "SUBMIT_BATCH"): {"tasks": [{"name": "n"}]}, ("broker", "GET"): {"id": "i"},
    ("broker", "CANCEL"): {"id": "i"}, ("broker", "PAUSE"): {"queue": "q"},
    ("broker", "RESUME"): {"queue": "q"}, ("broker", "PURGE"): {"queue": "q"},
    ("broker", "DEAD_LIST"): {"queue": "q"}, ("broker", "DEAD_RETRY"): {"queue": "q"},
    ("broker", "DEAD_PURGE"): {"queue": "q"}, ("broker", "CREDIT"): {"credits": 1},
    ("broker", "ACK"): {"id": "i"}, ("broker", "FAIL"): {"id": "i"},
    ("broker", "PROGRESS"): {"id": "i", "progress": 1},
    ("peer", "OK"): {}, ("peer", "ERROR"): {"code": "INTERNAL"},
    ("peer", "TASK"): {"id": "i", "queue": "q", "name": "n", "attempt": 1},
    ("peer", "CANCEL"): {"id": "i"}, ("peer", "RESULT"): {"id": "i", "state": "dead"},
}

WRONG = {  # values of the wrong msgpack type, per documented type (2.2)
    "uint": [-1, I(-1, "i64"), 1.0, F32(1.0), "1", True, b"\x01"],
    "int": [1.0, "1", False],
    "bool": [1, 0, "true"],
    "str": [b"x", 1, ["x"]],
    "bin": [1, True, [b"x"]],
    "array of str": ["a", ["a", b"b"], ["a", 1], ["a", None]],
    "array of uint": [1, [1, -1], [1, "2"], [1, 1.0]],
    "array of map": [{"name": "n"}, ["x"], [1]],
    "map": [[1], "x", Pairs([(1, 2)])],
}


def good_value(key, typ):
    """A valid value for any documented key (used where the op does not use the key)."""
    special = {"queue": "q", "name": "n", "id": "i", "role": "client", "code": "TASK_FAILED",
               "state": "queued", "outcome": "stored", "version": 1, "ids": ["i"], "running": ["i"],
               "queues": ["q"], "weights": [1], "capacity": 1, "tasks": [{"name": "n"}]}
    if key in special:
        return special[key]
    return {"uint": 7, "int": -3, "bool": True, "str": "text", "bin": b"\x00\xff",
            "array of str": ["a"], "array of uint": [1], "map": {"a": 1}}[typ]


def rid_field(side, op):
    return {"rid": 900} if side == "broker" or op in ("OK", "ERROR") else {}


def msg_of(side, op, **over):
    m = {"op": op}
    m.update(rid_field(side, op))
    m.update(BASE.get((side, op), {}))
    m.update(over)
    return m


def echo(side, m):
    """The rid a refusal must carry: the request's rid (requests only)."""
    return as_int(m.get("rid")) if side == "broker" else ANY


def ok_case(label, side, m, ex):
    return Case(label, side, mframe(m), ex.message(side, m))


ECHO = object()  # err_case: the refusal echoes the message's rid


def err_case(label, side, m, code, key=None, rid=ECHO):
    return Case(label, side, mframe(m), Err(code, key, echo(side, m) if rid is ECHO else rid))


def type_cases(doc, ex):
    cases = []
    for (side, op), tab in sorted(doc.keys.items()):
        for key, typ in sorted(tab.items()):
            for n, bad in enumerate(WRONG[typ]):
                m = msg_of(side, op, **{key: bad})
                rid = None if key == "rid" and side == "broker" else echo(side, m)  # invalid rid: none
                cases.append(Case(f"wrong type: {op} ({side}) {key}={enc(bad).hex()[:20]}", side,
                                  mframe(m), Err("BAD_REQUEST", key, rid)))
    # A known key in a message whose op does not use it: type-checked, then ignored.
    for key, typ in sorted(doc.registry.items()):
        for side, op in (("broker", "PING"), ("peer", "SHUTDOWN")):
            if key in doc.keys[(side, op)]:
                continue
            m = msg_of(side, op, **{key: WRONG[typ][0]})
            cases.append(Case(f"unused known key, wrong type: {op} {key}", side, mframe(m),
                              Err("BAD_REQUEST", key, echo(side, m))))
    for side, op in (("broker", "PING"), ("peer", "SHUTDOWN")):
        for variant in ("delay", "run_at"):
            m = msg_of(side, op)
            for key, typ in sorted(doc.registry.items()):
                if key not in m and key != ("run_at" if variant == "delay" else "delay"):
                    m[key] = good_value(key, typ)
            cases.append(ok_case(f"every known key in {op}, unused ones ignored ({variant})", side, m, ex))
    # Floats never stand for integers; booleans are not 0/1; str is not bin (and vice versa ok).
    cases += [
        err_case("float for uint 'delay'", "broker", msg_of("broker", "SUBMIT", delay=1.0), "BAD_REQUEST", "delay"),
        err_case("float for int 'priority'", "broker", msg_of("broker", "SUBMIT", priority=F32(2.0)), "BAD_REQUEST", "priority"),
        err_case("0 for bool 'push_result'", "broker", msg_of("broker", "SUBMIT", push_result=0), "BAD_REQUEST", "push_result"),
        err_case("bin for str 'name'", "broker", msg_of("broker", "SUBMIT", name=b"n"), "BAD_REQUEST", "name"),
        err_case("negative uint 'rid'", "broker", msg_of("broker", "PING", rid=-1), "BAD_REQUEST", "rid", rid=None),
        err_case("op of type int", "broker", {"op": 5, "rid": 40}, "BAD_REQUEST", "op"),
        err_case("op of type bin", "broker", {"op": b"PING", "rid": 41}, "BAD_REQUEST", "op"),
        err_case("element of 'tasks' not a map", "broker", msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n"}, 1]),
                 "BAD_REQUEST", "tasks"),
        err_case("wrong type inside a task map", "broker",
                 msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "delay": "soon"}]), "BAD_REQUEST", "delay"),
        ok_case("every integer form of a positive value", "broker",
                msg_of("broker", "SUBMIT", delay=I(1, "i8"), timeout=I(2, "i16"), wait=I(3, "i32"),
                       result_ttl=I(2 ** 63 - 1, "i64"), max_retries=I(1000, "u16"), priority=I(5, "u8")), ex),
        ok_case("uint 2^64-1 in uint64, int64 max in int64", "broker",
                msg_of("broker", "GET", rid=I(2 ** 64 - 1, "u64"), wait=I(2 ** 63 - 1, "i64")), ex),
    ]
    return cases


def structure_cases(doc, ex):
    """2.2: body, keys, nil, unknown keys, duplicates, ops."""
    ping = msg_of("broker", "PING")
    c = []
    c += [
        err_case("unknown op", "broker", {"op": "FROB", "rid": 50}, "UNKNOWN_OP"),
        err_case("unknown op with keys", "broker", {"op": "SUBMIT_LATER", "rid": I(51, "u16"), "name": "n"}, "UNKNOWN_OP"),
    ]
    for op in PEER_OPS:
        if op != "CANCEL":  # CANCEL is also a request
            c.append(err_case(f"broker-only op {op} sent to the broker", "broker", {"op": op, "rid": 52}, "UNKNOWN_OP"))
    c += [
        err_case("missing rid on a request", "broker", {"op": "PING"}, "BAD_REQUEST", "rid", rid=None),
        err_case("nil rid on a request", "broker", {"op": "PING", "rid": None}, "BAD_REQUEST", "rid", rid=None),
        err_case("missing op", "broker", {"rid": 53}, "BAD_REQUEST", "op"),
        err_case("nil op is a missing op", "broker", {"op": None, "rid": 54}, "BAD_REQUEST", "op"),
        ok_case("nil values are absent", "broker",
                msg_of("broker", "SUBMIT", queue=None, payload=None, id=None, priority=None, delay=None,
                       run_at=None, max_retries=None, timeout=None, result_ttl=None, push_result=None,
                       wait=None), ex),
        ok_case("nil then a value: no collision", "broker",
                Pairs([("op", "SUBMIT"), ("rid", 55), ("name", None), ("name", "n2"), ("queue", "q"),
                       ("queue", None)]), ex),
        ok_case("nil inside a task map is absent", "broker",
                msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "queue": None, "payload": None}]), ex),
        ok_case("unknown keys of every type are ignored", "broker",
                dict(ping, **{"x_float": 1.5, "x_f32": F32(0.5), "x_ext": msgpack.ExtType(5, b"abc"),
                              "x_ts": msgpack.Timestamp(1, 2), "x_nil": None, "x_neg": -(2 ** 63),
                              "x_map": Pairs([(1, 2), (b"k", [1.5])]), "x_arr": [None, True, b"\x00"],
                              "x_bin": b"\xff", "Op": 7, "RID": "x", "": 1}), ex),
        ok_case("unknown keys ignored in a task map", "broker",
                msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "x": 1.5, "y": msgpack.ExtType(1, b"")}]), ex),
        ok_case("payload sent as str inside a task map is a bin value", "broker",
                msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "payload": "as str \u00e9"}]), ex),
        ok_case("other known keys in a task map are ignored", "broker",
                msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "push_result": True, "wait": 5}]), ex),
        ok_case("key order does not matter", "broker",
                Pairs([("name", "n"), ("rid", 56), ("queue", "q"), ("op", "SUBMIT")]), ex),
        ok_case("map16 message", "broker", Pairs([("op", "PING"), ("rid", 57)], "16"), ex),
        ok_case("map32 message, str8/str16/str32 values, bin8/16/32", "broker",
                Pairs([("op", S("SUBMIT", "32")), ("rid", 58), ("name", S("n", "8")),
                       ("queue", S("q", "16")), ("payload", B(b"\x00", "16"))], "32"), ex),
        ok_case("array16/array32 forms", "broker",
                msg_of("broker", "DEAD_RETRY", ids=Arr(["a", "b"], "32")), ex),
        ok_case("bin8 payload", "broker", msg_of("broker", "SUBMIT", payload=B(b"\xff", "8")), ex),
    ]
    # Combinations the document rules out (5.2), which the decoder is expected to refuse too.
    batch = lambda **kw: msg_of("broker", "SUBMIT_BATCH", **kw)  # noqa: E731
    c += [
        err_case("SUBMIT: delay and run_at together", "broker", msg_of("broker", "SUBMIT", delay=1, run_at=2),
                 "BAD_REQUEST", "run_at"),
        err_case("SUBMIT_BATCH: delay and run_at together at the top", "broker",
                 batch(delay=1, run_at=2), "BAD_REQUEST", "run_at"),
        err_case("SUBMIT_BATCH: a task map with delay and run_at", "broker",
                 batch(tasks=[{"name": "n"}, {"name": "n", "delay": 1, "run_at": 2}]), "BAD_REQUEST", "run_at"),
        ok_case("SUBMIT_BATCH: a task map's delay replaces the top level's run_at", "broker",
                batch(run_at=5, tasks=[{"name": "n", "delay": 1}]), ex),
        err_case("SUBMIT_BATCH: a task map that ends up without name", "broker",
                 batch(tasks=[{"name": "n"}, {"queue": "q"}]), "BAD_REQUEST", "name"),
        ok_case("SUBMIT_BATCH: name taken from the top level", "broker",
                batch(name="top", tasks=[{"queue": "q"}, {}]), ex),
    ]
    for key in ("rid", "op", "name"):
        pairs = [("op", "SUBMIT"), ("rid", 59), ("name", "n"), (key, {"rid": 59, "op": "SUBMIT", "name": "n"}[key])]
        c.append(Case(f"key '{key}' given twice", "broker", mframe(Pairs(pairs)),
                      Err("BAD_REQUEST", key, ANY if key == "rid" else 59)))
    c.append(Case("key given twice in a task map", "broker",
                  mframe(msg_of("broker", "SUBMIT_BATCH", tasks=[Pairs([("name", "a"), ("name", "b")])])),
                  Err("BAD_REQUEST", "name", 900)))
    c.append(Case("key given twice, different types", "broker",
                  mframe(Pairs([("op", "GET"), ("rid", 60), ("id", "i"), ("wait", 1), ("wait", "x")])),
                  Err("BAD_REQUEST", "wait", 60)))
    # Required keys (ops table), missing or nil, in both directions.
    for (side, op), info in sorted(doc.ops.items()):
        for key in info["required"]:
            for how, m in (("missing", {k: v for k, v in msg_of(side, op).items() if k != key}),
                           ("nil", dict(msg_of(side, op), **{key: None}))):
                c.append(err_case(f"{op} ({side}): required '{key}' {how}", side, m, "BAD_REQUEST", key))
    c.append(ok_case("ERROR without rid is valid", "peer", {"op": "ERROR", "code": "BAD_FRAME", "message": "m"}, ex))
    c.append(ok_case("a push carrying rid: rid ignored", "peer", dict(msg_of("peer", "TASK"), rid=5), ex))
    # BAD_FRAME: not one map with str keys. Never carries a rid.
    good = enc(ping)
    for label, body in [
        ("body is an array", enc(["PING", 1])), ("body is a str", enc("PING")), ("body is an int", enc(1)),
        ("body is nil", b"\xc0"), ("body is a bin", enc(b"\x81\xa2op")),
        ("trailing bytes after the map", good + b"\xc0"), ("two maps in one body", good + good),
        ("truncated map", good[:-1]), ("map header claims more pairs", b"\x83" + good[1:]),
        ("truncated str", b"\x82\xa2op\xa4PI"), ("never-used byte 0xc1", b"\x81\xa2op\xc1"),
        ("int key at the top level", enc(Pairs([("op", "PING"), ("rid", 61), (1, 2)]))),
        ("bin key at the top level", enc(Pairs([("op", "PING"), ("rid", 62), (b"k", 2)]))),
        ("nil key at the top level", enc(Pairs([("op", "PING"), ("rid", 63), (None, 2)]))),
        ("int key in a task map", enc(msg_of("broker", "SUBMIT_BATCH", tasks=[Pairs([("name", "n"), (7, 1)])]))),
    ]:
        c.append(Case(label, "broker", frame(body), Err("BAD_FRAME", rid=None)))
    return c


def limit_places():
    """Where the decoder reads each limited key: key -> [(where, side, build(value))]."""
    def top(side, op, key):
        return (f"{op}", side, lambda v: msg_of(side, op, **{key: v}))

    def elem(side, op, key):  # the second element of an array of str
        return (f"{op} {key}[1]", side, lambda v: msg_of(side, op, **{key: ["ok", v]}))

    def in_task(key):  # inside the second element of SUBMIT_BATCH's tasks
        return ("SUBMIT_BATCH tasks[1]", "broker",
                lambda v: msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n"}, dict({"name": "n"}, **{key: v})]))

    return {
        "queue": [top("broker", op, "queue") for op in ("SUBMIT", "SUBMIT_BATCH", "STATS", "PAUSE", "RESUME",
                                                        "PURGE", "DEAD_LIST", "DEAD_RETRY", "DEAD_PURGE")] +
                 [in_task("queue"), top("peer", "TASK", "queue"), top("peer", "OK", "queue")],
        "queues": [elem("broker", "HELLO", "queues")],
        "name": [top("broker", "SUBMIT", "name"), top("broker", "SUBMIT_BATCH", "name"), in_task("name"),
                 top("peer", "TASK", "name"), top("peer", "OK", "name")],
        "id": [top("broker", op, "id") for op in ("SUBMIT", "GET", "CANCEL", "ACK", "FAIL", "PROGRESS")] +
              [in_task("id")] + [top("peer", op, "id") for op in ("TASK", "RESULT", "CANCEL", "OK")],
        "ids": [elem("broker", "DEAD_RETRY", "ids"), elem("broker", "DEAD_PURGE", "ids"), elem("peer", "OK", "ids")],
        "running": [elem("broker", "HEARTBEAT", "running")],
        "priority": [top("broker", "SUBMIT", "priority"), top("broker", "SUBMIT_BATCH", "priority"),
                     in_task("priority"), top("peer", "TASK", "priority"), top("peer", "OK", "priority")],
        "max_retries": [top("broker", "SUBMIT", "max_retries"), top("broker", "SUBMIT_BATCH", "max_retries"),
                        in_task("max_retries"), top("peer", "OK", "max_retries")],
        "progress": [top("broker", "PROGRESS", "progress"), top("peer", "OK", "progress")],
    }


# Text keys (2.3 "text"), each in the ops that use it. Keys whose values the document
# enumerates elsewhere (role, FAIL's code, state, outcome, error_code) are only tested over
# the limit; ERROR's code is free text to a reader ("treat a code you do not know as ...").
TEXT_PLACES = [("client", "broker", "HELLO"), ("password", "broker", "HELLO"), ("host", "broker", "HELLO"),
               ("worker_id", "broker", "HELLO"), ("role", "broker", "HELLO"), ("message", "broker", "FAIL"),
               ("message", "broker", "PROGRESS"), ("code", "broker", "FAIL"), ("reason", "peer", "SHUTDOWN"),
               ("error", "peer", "RESULT"), ("error_code", "peer", "RESULT"), ("state", "peer", "RESULT"),
               ("node", "peer", "OK"), ("server", "peer", "OK"), ("outcome", "peer", "OK"),
               ("message", "peer", "OK"), ("error", "peer", "OK"), ("state", "peer", "OK"),
               ("message", "peer", "ERROR"), ("code", "peer", "ERROR")]
ENUMERATED = {("role", "HELLO"), ("code", "FAIL"), ("state", "RESULT"), ("state", "OK"),
              ("outcome", "OK"), ("error_code", "RESULT")}


def limit_cases(doc, ex):
    """2.3 semantic limits at their boundaries, in every place the decoder reads the key."""
    c = []

    def add(label, side, m, good, key):
        c.append(ok_case(label, side, m, ex) if good else err_case(label, side, m, "BAD_REQUEST", key))

    places = limit_places()
    for lim in doc.limits():
        what, lo, hi = lim["what"], lim["lo"], lim["hi"]
        if what == "text":
            R.check(sorted({k for k, _, _ in TEXT_PLACES}) == sorted(lim["keys"]), "text keys: a place for each",
                    f"{lim['keys']}")
            for key, side, op in TEXT_PLACES:
                R.check(key in doc.keys[(side, op)], f"text place: {op} ({side}) uses '{key}'")
                add(f"text '{key}' in {op}: {hi + 1} bytes", side, msg_of(side, op, **{key: "x" * (hi + 1)}), False, key)
                if (key, op) not in ENUMERATED:
                    add(f"text '{key}' in {op}: {hi} bytes", side, msg_of(side, op, **{key: "x" * hi}), True, key)
            continue
        if what == "batch size":
            t = [{"name": "t"}]
            for n in (lo - 1, lo, hi, hi + 1):
                add(f"batch of {n} tasks", "broker", msg_of("broker", "SUBMIT_BATCH", tasks=t * n), lo <= n <= hi, "tasks")
            continue
        for key in lim["keys"] + lim["elem_keys"]:
            for where, side, build in places[key]:
                label = f"{what} '{key}' in {where}"
                if lim["chars"]:  # a byte string: length and alphabet
                    lo_c, hi_c = lim["chars"]
                    alphabet = bytes(b for b in range(lo_c, hi_c + 1) if chr(b) not in lim["forbid"])
                    for n in (lo - 1, lo, hi, hi + 1):
                        add(f"{label}: {n} bytes", side, build("a" * n), lo <= n <= hi, key)
                    add(f"{label}: the whole alphabet", side, build(S(alphabet[:hi])), True, key)
                    for bad in [bytes([lo_c - 1]), bytes([hi_c + 1]), b"\x00", b"\x80", b"\xff"] + \
                               [f.encode() for f in lim["forbid"]]:
                        add(f"{label}: byte 0x{bad.hex()}", side, build(S(b"ab" + bad)), False, key)
                else:  # an integer range
                    for v in (lo - 1, lo, hi, hi + 1):
                        if v < 0 and doc.registry[key] == "uint":
                            continue  # a negative uint is a type error, tested with the types
                        add(f"{label}: {v}", side, build(v), lo <= v <= hi, key)
    return c


def decoder_limit_cases(doc, ex):
    """2.3 decoder limits (BAD_FRAME) and 2.1 framing (FRAME_TOO_LARGE, zero length)."""
    c = []
    depth, nvalues, maxstr, maxframe = doc.max_depth(), doc.max_values(), doc.max_str(), doc.max_frame()
    ping = msg_of("broker", "PING")

    def nest(levels, leaf=0, kind="array"):
        v = leaf
        for _ in range(levels):
            v = [v] if kind == "array" else {"k": v}
        return v

    for kind in ("array", "map"):
        c.append(ok_case(f"nesting depth {depth} ({kind}s)", "broker", dict(ping, x=nest(depth - 1, kind=kind)), ex))
        c.append(Case(f"nesting depth {depth + 1} ({kind}s)", "broker", mframe(dict(ping, x=nest(depth, kind=kind))),
                      Err("BAD_FRAME", rid=None)))
    # In a task map (message 1, tasks 2, task map 3).
    c.append(Case(f"nesting depth {depth} through a task map", "broker",
                  mframe(msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "x": nest(depth - 3)}])),
                  Accepted("SUBMIT_BATCH")))
    c.append(Case(f"nesting depth {depth + 1} through a task map", "broker",
                  mframe(msg_of("broker", "SUBMIT_BATCH", tasks=[{"name": "n", "x": nest(depth - 2)}])),
                  Err("BAD_FRAME", rid=None)))
    # Values per frame: map 1 + keys op, rid, x 3 + their values 3 + the array's elements.
    fixed = 1 + 3 + 3
    for n, good in ((nvalues - fixed, True), (nvalues - fixed + 1, False)):
        m = {"op": "PING", "rid": 70, "x": [0] * n}
        c.append(ok_case(f"{n + fixed} values in a frame", "broker", m, ex) if good else
                 Case(f"{n + fixed} values in a frame", "broker", mframe(m), Err("BAD_FRAME", rid=None)))
    # One str value: at most maxstr bytes, keys included, payload sent as str too.
    c += [
        ok_case(f"str value of {maxstr} bytes", "broker", dict(ping, x=S(b"s" * maxstr)), ex),
        Case(f"str value of {maxstr + 1} bytes", "broker", mframe(dict(ping, x=S(b"s" * (maxstr + 1)))),
             Err("BAD_FRAME", rid=None)),
        ok_case(f"str key of {maxstr} bytes", "broker", Pairs([("op", "PING"), ("rid", 71), (S(b"k" * maxstr), 1)]), ex),
        Case(f"str key of {maxstr + 1} bytes", "broker",
             mframe(Pairs([("op", "PING"), ("rid", 72), (S(b"k" * (maxstr + 1)), 1)])), Err("BAD_FRAME", rid=None)),
        Case(f"payload as str of {maxstr + 1} bytes", "broker",
             mframe(msg_of("broker", "SUBMIT", payload=S(b"p" * (maxstr + 1)))), Err("BAD_FRAME", rid=None)),
        Case(f"payload as bin of {maxstr + 1} bytes (no str limit)", "broker",
             mframe(msg_of("broker", "SUBMIT", payload=b"p" * (maxstr + 1))),
             Either(ex.message("broker", msg_of("broker", "SUBMIT", payload=b"p" * (maxstr + 1))),
                    Err("PAYLOAD_TOO_LARGE", rid=900))),
    ]
    # Body length: exactly max_frame is fine; one more is refused from the header alone.
    head = enc({"op": "PING", "rid": 73})
    pad_key = enc("pad")
    n_pad = maxframe - (len(head) + len(pad_key) + 5)  # bin32 header is 5 bytes
    body = bytes([head[0] + 1]) + head[1:] + pad_key + B(b"\x00" * n_pad, "32").encode()
    R.check(len(body) == maxframe, "self-check: the max_frame body is max_frame bytes")
    c.append(Case(f"body of exactly {maxframe} bytes", "broker", frame(body), ex.message("broker", {"op": "PING", "rid": 73}), alone=True))
    c += [
        Case(f"header declaring {maxframe + 1}", "broker",
             [mframe(ping), struct.pack(">I", maxframe + 1) + b"\x81\xa2op"],
             [ex.message("broker", ping), Err("FRAME_TOO_LARGE", rid=None)], alone=True),
        Case("header declaring 0xffffffff", "broker", struct.pack(">I", 0xFFFFFFFF) + b"abc",
             Err("FRAME_TOO_LARGE", rid=None), alone=True),
        Case("zero-length frame", "broker", [mframe(ping), b"\x00\x00\x00\x00", mframe(ping)],
             [ex.message("broker", ping), Err("BAD_FRAME", rid=None)], alone=True),
        Case("zero-length frame (peer side)", "peer", b"\x00\x00\x00\x00", Err("BAD_FRAME", rid=None), alone=True),
        Case(f"header declaring {maxframe + 1} (peer side)", "peer", struct.pack(">I", maxframe + 1) + b"\x80",
             Err("FRAME_TOO_LARGE", rid=None), alone=True),
    ]
    return c


def split_delivery(ex):
    """2.1: a frame that arrives in many pieces, several frames in one read."""
    msgs = [msg_of("broker", "SUBMIT", rid=80 + i, payload=BLOB * 3) for i in range(3)]
    stream = b"".join(mframe(m) for m in msgs)
    p = subprocess.Popen([TOOL, "decode", "broker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pos, step = 0, 1
    while pos < len(stream):
        p.stdin.write(stream[pos:pos + step])
        p.stdin.flush()
        pos += step
        step = step % 7 + 1
        if pos < 40:
            time.sleep(0.002)
    p.stdin.close()
    lines = [json.loads(l) for l in p.stdout.read().decode().splitlines()]
    p.wait(timeout=30)
    want = [ex.message("broker", m) for m in msgs]
    problems = [mismatch(g, w) for g, w in zip(lines, want)] if len(lines) == len(want) else [f"{len(lines)} lines"]
    R.check(not any(problems), "frames delivered in 1..7-byte pieces decode", f"{problems}")


def part2(doc, ex):
    R.part = "2 errors"
    run_cases(type_cases(doc, ex))
    run_cases(structure_cases(doc, ex))
    R.part = "2 limits"
    run_cases(limit_cases(doc, ex))
    run_cases(decoder_limit_cases(doc, ex))
    R.part = "2 framing"
    split_delivery(ex)


# --------------------------------------------------------------------------
# Part 3: C -> Python
# --------------------------------------------------------------------------

def split_frames(stream):
    frames, pos = [], 0
    while pos < len(stream):
        n = struct.unpack_from(">I", stream, pos)[0]
        frames.append(stream[pos + 4:pos + 4 + n])
        pos += 4 + n
    return frames, pos == len(stream)


def type_ok(v, typ, strict_bin):
    def is_uint(x):
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2 ** 64

    if typ == "uint":
        return is_uint(v)
    if typ == "int":
        return isinstance(v, int) and not isinstance(v, bool) and -2 ** 63 <= v < 2 ** 63
    if typ == "bool":
        return isinstance(v, bool)
    if typ == "str":
        return isinstance(v, str)
    if typ == "bin":
        return isinstance(v, bytes) or (not strict_bin and isinstance(v, str))
    if typ == "array of str":
        return isinstance(v, list) and all(isinstance(e, str) for e in v)
    if typ == "array of uint":
        return isinstance(v, list) and all(is_uint(e) for e in v)
    if typ == "array of map":
        return isinstance(v, list) and all(isinstance(e, dict) for e in v)
    if typ == "map":
        return isinstance(v, dict) and all(isinstance(k, str) for k in v)
    return False


def enum_of(cell):
    """A limits/meaning cell that lists the allowed values: `a`, `b` or `c`."""
    vals = ticks(cell)
    stripped = re.sub(r"`[^`]+`", "", cell)
    return vals if vals and re.fullmatch(r"[\s,]*(?:(?:or|,)\s*)*", stripped) else None


class Checker:
    """Checks one decoded message (python-msgpack's view) against the document."""

    def __init__(self, doc):
        self.doc = doc
        self.limits = doc.limits()
        get_state = doc.reply_rows[("GET", "state")]["meaning"]
        self.task_states = ticks(get_state.split("(")[0])
        self.final_states = ticks(doc.paragraph_starting("`succeeded`, `dead` and `cancelled` are final").split("are final")[0])

    def semantic(self, where, m, problems):
        for lim in self.limits:
            for key in lim["keys"] + lim["elem_keys"]:
                if key not in m:
                    continue
                if lim["what"] == "batch size":
                    if where == "SUBMIT_BATCH" and not lim["lo"] <= len(m[key]) <= lim["hi"]:
                        problems.append(f"'{key}' has {len(m[key])} elements")
                    continue
                vals = m[key] if key in lim["elem_keys"] else [m[key]]
                for v in vals:
                    if isinstance(v, (str, bytes)):
                        b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
                        bad = not (lim["lo"] or 0) <= len(b) <= lim["hi"]
                        if lim["chars"]:
                            bad |= any(not lim["chars"][0] <= x <= lim["chars"][1] or chr(x) in lim["forbid"] for x in b)
                        if bad:
                            problems.append(f"'{key}' = {short(v, 40)} breaks the {lim['what']} limit")
                    elif isinstance(v, int) and not lim["chars"] and not lim["lo"] <= v <= lim["hi"]:
                        problems.append(f"'{key}' = {v} outside {lim['lo']}..{lim['hi']}")

    def column_limits(self, op, m, problems):
        """The limits column of a request table: enumerations, ranges, >= N, same length."""
        for key, v in m.items():
            row = self.doc.req_rows.get((op, key))
            if not row:
                continue
            cell = row["limits"]
            vals = enum_of(cell)
            if vals and v not in vals:
                problems.append(f"{op} '{key}' = {v!r}, the document allows {vals}")
            rng = re.fullmatch(r"(-?[\d,]+) \.\. (-?[\d,]+)", cell)
            if rng and isinstance(v, int) and not num(rng.group(1)) <= v <= num(rng.group(2)):
                problems.append(f"{op} '{key}' = {v} outside {cell}")
            ge = re.search(r"≥ (\d+)", cell)
            if ge:
                for x in (v if isinstance(v, list) else [v]):
                    if isinstance(x, int) and x < int(ge.group(1)):
                        problems.append(f"{op} '{key}' = {x} below {ge.group(1)}")
            same = re.search(r"same length as `(\w+)`", cell)
            if same and len(v) != len(m.get(same.group(1), [])):
                problems.append(f"{op} '{key}' length differs from '{same.group(1)}'")
            if "1 or more" in cell and len(v) < 1:
                problems.append(f"{op} '{key}' is empty")
            if "non-empty" in cell and len(v) < 1:
                problems.append(f"{op} '{key}' is empty")
        if op == "HELLO" and m.get("role") == "worker":
            for (o, key), row in self.doc.req_rows.items():
                if o == op and row["required / default"] == "required for workers" and key not in m:
                    problems.append(f"worker HELLO lacks '{key}' (required for workers)")

    def presence(self, op, rows, m, problems):
        """A 'present' column: always; when `x` > 0; when <states>; when final."""
        state = m.get("state")
        for (o, key), row in rows.items():
            if o != op or "present" not in row:
                continue
            cell = row["present"]
            if cell.startswith("always"):
                if key not in m:
                    problems.append(f"{op}: '{key}' is always present, but missing")
                continue
            gt = re.fullmatch(r"when `(\w+)` > 0", cell)
            if gt:
                if (key in m) != (m.get(gt.group(1), 0) > 0):
                    problems.append(f"{op}: '{key}' must be present exactly {cell}")
                continue
            states = self.final_states if cell == "when final" else ticks(cell)
            if cell.startswith("when") and states and set(states) <= set(self.task_states) and state:
                if (key in m) != (state in states):
                    problems.append(f"{op}: '{key}' must be present exactly {cell} (state {state!r})")

    def message(self, side, m, body):
        problems = []
        op = m.get("op")
        if (side, op) not in self.doc.ops:
            return [f"op {op!r} is not one the document lists for side {side}"]
        tab = self.doc.keys[(side, op)]
        strict_bin = side == "peer"  # the broker always sends bin keys as bin
        for k, v in m.items():
            if k == "op":
                continue
            if k not in tab:
                problems.append(f"key '{k}' is not listed for {op}")
            elif not type_ok(v, tab[k], strict_bin):
                problems.append(f"key '{k}' = {short(v, 60)} is not of type {tab[k]}")
        for k in self.doc.ops[(side, op)]["required"]:
            if k not in m:
                problems.append(f"required key '{k}' missing")
        if side == "broker" and "rid" not in m:
            problems.append("a request without rid")
        if op in ("TASK", "RESULT", "SHUTDOWN") or (side == "peer" and op == "CANCEL"):
            if "rid" in m:
                problems.append("a push carries rid")
        self.semantic(op, m, problems)
        for e in m.get("tasks", []) if isinstance(m.get("tasks"), list) else []:
            etab = self.doc.task_keys(side)
            for k, v in e.items() if isinstance(e, dict) else []:
                if k not in etab:
                    problems.append(f"task map key '{k}' is not a documented task key")
                elif not type_ok(v, etab[k], strict_bin):
                    problems.append(f"task map key '{k}' = {short(v, 60)} is not of type {etab[k]}")
            self.semantic("task", e, problems)
            if side == "broker":
                if "name" not in e and "name" not in m:
                    problems.append("a task map ends up without 'name'")
                if "delay" in e and "run_at" in e:
                    problems.append("a task map gives both delay and run_at")
            else:
                self.presence("GET", self.doc.reply_rows, e, problems)
        if side == "broker":
            self.column_limits(op, m, problems)
            if "delay" in m and "run_at" in m:
                problems.append("delay and run_at together")
            if op == "SUBMIT_BATCH" and "id" in m:
                problems.append("an id at the top level of SUBMIT_BATCH")
        elif op == "ERROR":
            for k in ("code", "message"):  # section 3: ERROR only, always
                if k not in m:
                    problems.append(f"ERROR without '{k}'")
            if m.get("code") not in self.doc.request_errors:
                problems.append(f"ERROR code {m.get('code')!r} is not a request error code")
        elif op == "OK":
            rest = set(m) - {"op", "rid"}
            fits = [o for o, t in self.doc.reply_keys.items() if rest <= set(t)]
            if rest and not fits:
                problems.append(f"no reply table holds all of {sorted(rest)}")
            if fits == ["GET"]:
                self.presence("GET", self.doc.reply_rows, m, problems)
            for o in fits[:1] if len(fits) == 1 else []:
                for key in ("outcome", "state"):
                    row = self.doc.reply_rows.get((o, key))
                    if row and key in m:
                        allowed = re.findall(r"`(\w+)`:", row["meaning"]) if key == "outcome" else self.task_states
                        if m[key] not in allowed:
                            problems.append(f"{o} reply '{key}' = {m[key]!r}, not in {allowed}")
                if o == "HELLO" and m.get("version") != 1:
                    problems.append("HELLO reply version is not 1")
        else:  # pushes
            self.presence(op, self.doc.push_rows, m, problems)
            if op == "RESULT":
                allowed = ticks(self.doc.push_rows[("RESULT", "state")]["meaning"])
                if m.get("state") not in allowed:
                    problems.append(f"RESULT state {m.get('state')!r} not in {allowed}")
        if side == "peer":  # error_code: a task error code (section 6)
            for mm in [m] + [e for e in m.get("tasks", []) if isinstance(e, dict)]:
                if "error_code" in mm and mm["error_code"] not in self.doc.task_errors:
                    problems.append(f"'error_code' = {mm['error_code']!r} is not a task error code")
        # The broker writes op, rid, then the rest sorted by name (section 8).
        if side == "peer":
            keys = list(m)
            want = [k for k in ("op", "rid") if k in m] + sorted(k for k in m if k not in ("op", "rid"))
            if keys != want:
                problems.append(f"key order {keys}, expected op, rid, then sorted: {want}")
        # Integers: the broker always writes the shortest encoding.
        longer = []
        scan(body, 0, lambda v, size: longer.append((v, size)) if size != shortest_int_size(v) else None)
        for v, size in longer:
            problems.append(f"integer {v} written in {size} bytes, shortest is {shortest_int_size(v)}")
        return problems


def part3(doc, ex):
    R.part = "3 c->py"
    stream = tool(["encode"])
    listing = [l.split() for l in tool(["list"]).decode().splitlines() if l.strip()]
    frames, exact = split_frames(stream)
    R.check(exact, "encode output is a whole number of frames")
    R.check(len(frames) == len(listing), "one frame per listed sample", f"{len(frames)} frames, {len(listing)} listed")
    checker = Checker(doc)
    seen = set()
    by_side = {"broker": [], "peer": []}
    for (label, side), body in zip(listing, frames):
        R.check(1 <= len(body) <= doc.max_frame(), f"{label}: body length within 1..max_frame")
        try:
            m = msgpack.unpackb(body, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
        except Exception as e:  # ExtraData (bytes after the map) included
            R.check(False, f"{label}: body is one msgpack value", repr(e))
            continue
        if not R.check(isinstance(m, dict), f"{label}: body is a map", short(m)):
            continue
        R.check(all(isinstance(k, str) for k in m), f"{label}: every key is a str", f"{list(m)}")
        seen.add((side, m.get("op")))
        problems = checker.message(side, m, body)
        R.check(not problems, f"{label} ({side}): agrees with the document", "\n     ".join(problems))
        by_side[side].append((label, m, body))
    for side, op in sorted(doc.ops):
        R.check((side, op) in seen, f"samples cover {op} ({side})")
    # The frames decode back through proto/ to exactly what python-msgpack read, typed by the doc.
    for side, samples in by_side.items():
        lines = decode(side, b"".join(frame(b) for _, _, b in samples))
        if not R.check(len(lines) == len(samples), f"decode of the {side} samples: one line each"):
            continue
        for (label, m, body), got in zip(samples, lines):
            want = {"op": m["op"], "fields": {}}
            tab = doc.keys.get((side, m["op"]), {})
            spans = {k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k: (s, e)
                     for k, s, e in ((msgpack.unpackb(kb, raw=False), s, e) for kb, s, e in top_spans(body))}
            for k, v in m.items():
                if k == "op" or k not in tab:
                    continue
                want["fields"][k] = {"raw": body[spans[k][0]:spans[k][1]].hex()} if tab[k] == "map" else \
                    ex.value(to_sendable(v), tab[k], side)
            problem = mismatch(got, want)
            R.check(problem is None, f"{label}: proto/ decodes its own frame as python-msgpack reads it", problem or "")


def to_sendable(v):
    """python-msgpack's decoded value as the values Expect understands."""
    if isinstance(v, str):
        return S(v.encode("utf-8", "surrogateescape"))
    if isinstance(v, list):
        return [to_sendable(e) for e in v]
    if isinstance(v, dict):
        return {k: to_sendable(e) for k, e in v.items()}
    return v


# --------------------------------------------------------------------------
# Part 4: the worked example
# --------------------------------------------------------------------------

HEXDUMP_LINE = re.compile(r"^([0-9a-f]{8})  ((?:[0-9a-f]{2} ?)+?)\s*\|(.*)\|$")


def parse_described(text):
    """The doc's notation {"k":v,...,"payload":bin "hello"} as python values (bin -> bytes)."""
    js = re.sub(r'bin "((?:[^"\\]|\\.)*)"', r'{"$bin": "\1"}', text)

    def hook(pairs):
        d = dict(pairs)
        return d["$bin"].encode() if list(d) == ["$bin"] else d

    return json.loads(js, object_pairs_hook=hook)


def worked_examples(doc):
    """[(kind, described object, stated byte count, bytes, offset table)] from section 8."""
    sec = doc.text.split("## 8. Worked example", 1)[1].split("\n## ", 1)[0]
    out = []
    for m in re.finditer(r"\*\*(Request|Reply|Push)\*\* `([^`]*)`,?\s*(\d+) bytes.*?```\n(.*?)```", sec, re.S):
        kind, described, count, dump = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        data, ascii_ok = b"", True
        for line in dump.strip().splitlines():
            lm = HEXDUMP_LINE.match(line)
            R.check(lm is not None, f"{kind}: hexdump line parses", line)
            if not lm:
                continue
            R.check(int(lm.group(1), 16) == len(data), f"{kind}: hexdump offset {lm.group(1)}")
            chunk = bytes.fromhex(lm.group(2))
            shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
            ascii_ok &= shown == lm.group(3)
            data += chunk
        R.check(ascii_ok, f"{kind}: the hexdump's text column matches its bytes")
        out.append((kind, parse_described(described), count, data, sec[m.end():].split("**", 1)[0]))
    return sec, out


def part4(doc, ex):
    R.part = "4 example"
    sec, examples = worked_examples(doc)
    R.check([k for k, *_ in examples] == ["Request", "Reply", "Push"], "section 8 has request, reply, push",
            f"{[k for k, *_ in examples]}")
    for kind, obj, count, data, after in examples:
        side = "broker" if kind == "Request" else "peer"
        R.check(len(data) == count, f"{kind}: {count} bytes as stated", f"hexdump has {len(data)}")
        R.check(struct.unpack(">I", data[:4])[0] == len(data) - 4, f"{kind}: header = body length")
        body = data[4:]
        try:
            got = msgpack.unpackb(body, raw=False)
        except Exception as e:
            R.check(False, f"{kind}: body decodes with python-msgpack", repr(e))
            continue
        R.check(got == obj and [type(v) for v in got.values()] == [type(v) for v in obj.values()],
                f"{kind}: python-msgpack decodes it to the described message", f"{got} vs {obj}")
        R.check(list(got) == list(obj), f"{kind}: key order as described")
        R.check(frame(msgpack.packb(obj, use_bin_type=True)) == data,
                f"{kind}: python-msgpack packs the described message to these exact bytes")
        problems = Checker(doc).message(side, got, body)
        R.check(not problems, f"{kind}: agrees with the document's tables", "; ".join(problems))
        line = decode(side, data)
        want = ex.message(side, obj)
        problem = mismatch(line[0], want) if len(line) == 1 else f"{len(line)} lines"
        R.check(problem is None, f"{kind}: proto_tool decode {side} accepts it", problem or "")
        if kind == "Request":  # the offset table under the request
            rows = re.findall(r"^\| (0x[0-9a-f]+) \| `([0-9a-f ]+)` \|", after, re.M)
            R.check(len(rows) >= 10, "request offset table parsed")
            pos = 0
            for off, hexbytes in rows:
                chunk = bytes.fromhex(hexbytes)
                R.check(int(off, 16) == pos and data[pos:pos + len(chunk)] == chunk,
                        f"offset table row {off}: `{hexbytes}`", f"dump has {data[int(off, 16):][:len(chunk)].hex(' ')}")
                pos = int(off, 16) + len(chunk)
            R.check(pos == len(data), "offset table covers the whole request")
            one = re.search(r"same bytes as one hex string:\s*```\n([0-9a-f]+)\n```", sec)
            R.check(one and bytes.fromhex(one.group(1)) == data, "the one-line hex string equals the request")
    # The Python snippet of section 8, run as written.
    snippet = re.search(r"```python\n(.*?)```", sec, re.S)
    try:
        exec(snippet.group(1), {})
        R.check(True, "section 8's Python snippet runs")
    except Exception as e:
        R.check(False, "section 8's Python snippet runs", repr(e))
    # The stated times.
    m = re.search(r"cf` is uint64, here (\d+) = ([0-9T:.\-]+)Z", sec)
    stamp = datetime.fromtimestamp(int(m.group(1)) / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    R.check(stamp == m.group(2), "finished_at's stated date", f"{stamp} vs {m.group(2)}")
    m = re.search(r"sample id `(\w+)` carries the time (\d+)", sec)
    alphabet = re.search(r"alphabet\s+`([0-9A-Z]{32})`", doc.text).group(1)
    t = 0
    for ch in m.group(1)[:10]:
        t = t * 32 + alphabet.index(ch)
    R.check(t == int(m.group(2)), "the sample id's first 10 characters carry the stated time", f"{t}")


# --------------------------------------------------------------------------

def main():
    global TOOL
    if len(sys.argv) != 3:
        sys.exit("usage: test_interop.py PROTO_TOOL PROTOCOL.md")
    TOOL = sys.argv[1]
    with open(sys.argv[2], encoding="utf-8") as f:
        doc = Doc(f.read())
    doc.finish()
    ex = Expect(doc)
    started = time.time()
    for part in (part0, part1, part2, part3, part4):
        before = (R.passed, R.failed)
        try:
            part(doc, ex) if part is not part0 else part(doc)
        except Exception as e:  # a crash in one part is a failure, not the end of the run
            import traceback
            traceback.print_exc()
            R.check(False, f"{part.__name__} ran to the end", repr(e))
        print(f"-- {part.__name__}: {R.passed - before[0]} passed, {R.failed - before[1]} failed")
    print(f"({time.time() - started:.1f} s)")
    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
