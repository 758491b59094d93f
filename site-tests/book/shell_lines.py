"""Every shell line a page shows, taken from the built HTML, run in page order.

This checks the block runner from the other side: it starts from what the reader sees
(the text of each shell block in the built page) rather than from the snippets. Each
block's text is matched to the registry by its exact text:

- blocks registered as gpu:N, multi-node, cluster or external, blocks expected to fail
  (exit other than 0), and whole scripts shown as listings are skipped;
- a cpu block whose text is exactly the text the block runner executed and recorded
  (the sha256 in its fresh, passing record) has been run already, in page order, in one
  scratch copy of the repository: it is not run twice;
- anything else (text that matches no registered block, or differs from what the runner
  executed, or lines that change the shell's state for later lines, such as `export`)
  makes the page run here: all its cpu lines, in page order, in one shell, in a fresh
  scratch copy of the repository, each line's exit status checked.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import records, runner
from .registry import RECORDS_DIR, Entry, parse_ref, section_text

# The page's own setup line; the runner's environment is what it sets up.
SETUP_LINES = {"source .venv/bin/activate", ". .venv/bin/activate"}
# A builtin that changes the shell for later lines, as a whole word (`. file` sources a file;
# `.venv/bin/python` runs one), or a bare assignment.
STATE = re.compile(r"^\s*(export|source|\.|set|unset|alias|declare|shopt|ulimit|umask)(\s|$)"
                   r"|^\s*[A-Za-z_]\w*=\S*\s*$")
MARK = "::book-shell-line::"


@dataclass
class Planned:
    index: int
    text: str
    key: str | None
    action: str  # "skip", "ran" (by the block runner), or "run"
    why: str


@dataclass
class PagePlan:
    page: str
    blocks: list[Planned] = field(default_factory=list)

    @property
    def must_run(self) -> bool:
        return any(b.action == "run" for b in self.blocks)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _by_text(entries: dict[str, Entry]) -> dict[str, list[str]]:
    """Registered keys by the sha256 of the text a page shows for them."""
    out: dict[str, list[str]] = {}
    for key in entries:
        try:
            text = section_text(*parse_ref(key))
        except (OSError, ValueError):
            continue
        out.setdefault(_sha(text.strip("\n")), []).append(key)
    return out


def plan_page(page: str, texts: list[str], entries: dict[str, Entry], records_dir: Path = RECORDS_DIR,
              by_text: dict[str, list[str]] | None = None) -> PagePlan:
    """What to do with each shell block of a page, given the blocks' texts in page order."""
    by_text = _by_text(entries) if by_text is None else by_text
    plan = PagePlan(page)
    for i, raw in enumerate(texts):
        text = raw.strip("\n")
        keys = by_text.get(_sha(text), [])
        # Prefer a cpu block among blocks that show the same text.
        keys = sorted(keys, key=lambda k: entries[k].tier != "cpu")
        key = keys[0] if keys else None
        e = entries.get(key) if key else None
        if e is None:
            plan.blocks.append(Planned(i, text, None, "run", "matches no registered block"))
        elif e.listing:
            plan.blocks.append(Planned(i, text, key, "skip", "a script shown as a listing"))
        elif e.tier != "cpu":
            plan.blocks.append(Planned(i, text, key, "skip", f"tier {e.tier}"))
        elif (e.expect or {}).get("exit", 0) != 0:
            plan.blocks.append(Planned(i, text, key, "skip", f"expected to exit {e.expect['exit']}"))
        elif any(STATE.match(ln) and ln.strip() not in SETUP_LINES for ln in text.splitlines()):
            plan.blocks.append(Planned(i, text, key, "run", "changes the shell's state for later lines"))
        else:
            rec = records.fresh_record(e, records_dir)
            if rec is not None and rec.get("snippets", {}).get(key) == _sha(section_text(*parse_ref(key))) \
                    and section_text(*parse_ref(key)).strip("\n") == text:
                plan.blocks.append(Planned(i, text, key, "ran", "the block runner ran this text and it passed"))
            else:
                plan.blocks.append(Planned(i, text, key, "run", "no fresh record of this exact text"))
    return plan


def script_for(plan: PagePlan) -> tuple[str, list[str]]:
    """One shell script for a page's cpu lines, each followed by a marker with its status."""
    lines, shown = [], []
    for b in plan.blocks:
        if b.action == "skip":
            continue
        for ln in b.text.splitlines():
            if not ln.strip():
                continue
            shown.append(ln)
            lines.append(ln)
            lines.append(f'echo "{MARK}{len(shown) - 1}:$?"')
    return "\n".join(lines), shown


def run_page(plan: PagePlan, entries: dict[str, Entry], timeout: float | None = None) -> list[str]:
    """Run a page's cpu lines in one shell in a fresh scratch copy; the lines that failed."""
    script, shown = script_for(plan)
    if not shown:
        return []
    if timeout is None:
        timeout = sum(entries[b.key].timeout if b.key else 300 for b in plan.blocks if b.action != "skip")
    workdir = runner.scratch_copy()
    try:
        # No `set -e`: every line runs and reports its own exit status (pipefail: a pipe fails
        # when its first command does, as `cmd 2>&1 | tee log` should).
        res, survivors = runner.run_text(script, workdir, timeout, prologue="set -o pipefail\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    status = {int(i): int(code) for i, code in re.findall(rf"^{re.escape(MARK)}(\d+):(\d+)$", res.output, re.M)}
    failures = []
    for i, ln in enumerate(shown):
        if i not in status:
            failures.append(f"{plan.page}: {ln!r} did not finish ({'; '.join(res.failures) or 'no status'})")
        elif status[i] != 0:
            failures.append(f"{plan.page}: {ln!r} exited {status[i]}")
    if survivors:
        failures.append(f"{plan.page}: left {len(survivors)} process(es) running")
    if failures:
        failures.append("--- last lines of output ---\n" + res.tail(30))
    return failures
