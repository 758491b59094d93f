"""What a block is checked against, applied to a live run (the runner) or to a record.

A run passes when its exit code, output patterns, absent patterns, files, metrics and
wall time meet the registry's expectation. A record keeps the evidence of that (exit
code, the lines each output pattern matched, the summary line, the metrics of every
run, wall times), so the same checks can be applied to it again later, and a digest
of what it was checked against, so that a changed expectation makes it stale.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics

from .registry import METRIC_RE, Claim, Entry

# How many matches of one output pattern a record keeps as evidence.
MATCHES_KEPT = 3


def last_json(output: str) -> dict | None:
    """The last line of the output that is a JSON object: a script's summary line.

    Lines other processes print after it (NCCL tearing down a communicator, another
    rank finishing) are skipped.
    """
    line = summary_line(output)
    return json.loads(line) if line is not None else None


def summary_line(output: str) -> str | None:
    """The text of the last line that is a JSON object, or None."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return line
    return None


def lookup(metrics: dict, dotted: str):
    """A nested value by its dotted name ("busbw.1073741824"), or None."""
    value = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def holds(value, cond: str) -> bool:
    """Whether a metric meets a check such as '>= 700' (true and false count as 1 and 0)."""
    op, bound = METRIC_RE.match(str(cond)).groups()
    b = float(bound)
    return isinstance(value, (int, float)) and {
        ">=": value >= b, "<=": value <= b, ">": value > b, "<": value < b, "==": value == b,
    }[op]


def median_metrics(runs: list[dict | None]) -> dict | None:
    """Each numeric metric's median across runs; anything else from the last run."""
    runs = [r for r in runs if isinstance(r, dict)]
    if not runs:
        return None
    if len(runs) == 1:
        return runs[0]

    def merge(values: list, last):
        if is_number(last) and all(is_number(v) for v in values):
            return statistics.median(values)
        if isinstance(last, dict) and all(isinstance(v, dict) for v in values):
            return {k: merge([v[k] for v in values if k in v], last[k]) for k in last}
        return last

    return merge(runs, runs[-1])


def matched_lines(pattern: str, output: str) -> list[str]:
    """The whole lines (or line spans) where a pattern matches, the first few."""
    found = []
    for m in re.finditer(pattern, output, re.MULTILINE):
        start = output.rfind("\n", 0, m.start()) + 1
        end = output.find("\n", max(m.end() - 1, m.start()))
        span = output[start : end if end >= 0 else len(output)]
        if span not in found:
            found.append(span)
        if len(found) >= MATCHES_KEPT:
            break
    return found


def check_output(entry: Entry, output: str) -> tuple[list[str], dict[str, list[str]]]:
    """Failures of the output patterns, and the lines each `output:` pattern matched."""
    exp = entry.expect or {}
    failures, matched = [], {}
    for pattern in exp.get("output", []):
        lines = matched_lines(pattern, output)
        if lines:
            matched[pattern] = lines
        else:
            failures.append(f"output has no match for {pattern!r}")
    for pattern in exp.get("absent", []):
        if re.search(pattern, output, re.MULTILINE):
            failures.append(f"output matches {pattern!r}, which must be absent")
    return failures, matched


def check_exit(entry: Entry, code) -> list[str]:
    want = (entry.expect or {}).get("exit", 0)
    return [] if code == want else [f"exit code {code}, expected {want}"]


def check_metrics(entry: Entry, metrics: dict | None) -> list[str]:
    failures = []
    for name, cond in (entry.expect or {}).get("metrics", {}).items():
        value = lookup(metrics or {}, name)
        if not holds(value, cond):
            op, bound = METRIC_RE.match(str(cond)).groups()
            failures.append(f"metric {name} = {value!r}, expected {op} {bound}")
    return failures


def check_wall(entry: Entry, wall_s) -> list[str]:
    if not is_number(wall_s):
        return ["no wall time"]
    return [] if wall_s <= entry.timeout else [f"ran {wall_s:.0f} s, past its timeout of {entry.timeout} s"]


# --- what a record was checked against ---------------------------------------------------


def _normal_expect(expect: dict) -> dict:
    """The expectation with defaults filled in and metric checks written one way."""
    out = {
        "exit": expect.get("exit", 0),
        "output": [str(p) for p in expect.get("output", [])],
        "absent": [str(p) for p in expect.get("absent", [])],
        "files": [str(p) for p in expect.get("files", [])],
        "metrics": {},
    }
    for name, cond in (expect.get("metrics") or {}).items():
        op, bound = METRIC_RE.match(str(cond)).groups()
        out["metrics"][str(name)] = f"{op} {float(bound)!r}"
    return out


def digest(entry: Entry, claims: list[Claim]) -> str:
    """sha256 of what the block is checked against: tier, timeout, expect, repeat, claims."""
    named = [
        {"says": c.says, "of": list(c.of), "over": list(c.over), "at_least": float(c.at_least)}
        for c in claims if entry.key in (c.of[0], c.over[0])
    ]
    basis = {
        "tier": entry.tier,
        "timeout": float(entry.timeout),
        "expect": _normal_expect(entry.expect or {}),
        "repeat": entry.repeat,
        "claims": sorted(named, key=lambda c: json.dumps(c, sort_keys=True)),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def recheck(entry: Entry, rec: dict) -> list[str]:
    """The current expectation applied to a record's own stored evidence."""
    failures = []
    if "exit" not in rec:
        failures.append("the record keeps no exit code")
    else:
        failures += check_exit(entry, rec["exit"])
    matched = rec.get("matched") or {}
    for pattern in (entry.expect or {}).get("output", []):
        lines = matched.get(pattern)
        if not lines or not re.search(pattern, "\n".join(lines), re.MULTILINE):
            failures.append(f"the record keeps no line that matches {pattern!r}")
    kept = "\n".join([rec.get("output") or "", rec.get("summary") or ""]
                     + [ln for lines in matched.values() for ln in lines])
    for pattern in (entry.expect or {}).get("absent", []):
        if re.search(pattern, kept, re.MULTILINE):
            failures.append(f"the record's output matches {pattern!r}, which must be absent")
    failures += check_metrics(entry, rec.get("metrics"))
    runs = rec.get("runs") or [{"wall_s": rec.get("wall_s")}]
    if len(runs) != entry.repeat:
        failures.append(f"the record holds {len(runs)} run(s), the block asks for {entry.repeat}")
    for run in runs:
        failures += check_wall(entry, run.get("wall_s"))
    return failures
