"""What of a recorded output a page shows: the lines that make the point.

The record keeps the full text; the `output()` macro shows it without

- torchrun's OMP_NUM_THREADS banner (four log lines at start-up);
- the script's JSON summary line (for the test runner, not the reader);
- Python tracebacks, each shortened to its last line, the error (torchrun's
  ChildFailedError report keeps its title line, which names the failed script), and
  C++ stack frames;
- NCCL's and c10d's teardown warnings, and a warning or error line repeated word for
  word (every rank prints the same one);
- terminal colour codes;
- lines matching the block's own `show: {drop: [...]}` patterns;
- within a line, text matching a `show: {cut: [[pattern, replacement], ...]}` pattern,
  replaced (a 600-character fingerprint shortened to the fields that differ).

`show: {full: true}` in the registry shows the output as recorded.
"""

from __future__ import annotations

import re

from .checks import summary_line

# glog-style prefix of torch's own log lines: "W1129 21:15:31.218000 3223 path.py:851] "
GLOG = r"[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
RANK = r"(?:\[rank\d+\]:\s?)?"
BANNER = re.compile(rf"^{GLOG}(\s*|\*+\s*|Setting OMP_NUM_THREADS environment variable .*)$")
TRACEBACK = re.compile(rf"^({RANK})Traceback \(most recent call last\):\s*$")
CHAINED = re.compile(rf"^{RANK}(The above exception was the direct cause of the following exception:"
                     r"|During handling of the above exception, another exception occurred:)\s*$")
TEARDOWN = [
    re.compile(r"destroy_process_group\(\) was not called before program exit"),
    re.compile(r"ProcessGroupNCCL\.cpp:\d+\] Warning: .*(destroy|shutdown|abort)", re.IGNORECASE),
    re.compile(r"\bTCPStore\b.*(Broken pipe|Connection reset|recvValue failed|sendBytes failed)"),
]
DIAGNOSTIC = re.compile(r"(warn|error|Warning|Error|WARNING|ERROR)")
REPORT_RULE = re.compile(r"^={20,}\s*$")
# Terminal colour and underline codes (nvidia-smi underlines its table's header).
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A C++ exception's stack, as c10 prints it: the header and one line per frame.
CPP_STACK = re.compile(r"^(Exception raised from .* \(most recent call first\):|frame #\d+: )")


def _strip_prefix(line: str) -> str:
    """A line without a rank prefix or glog timestamp, for spotting repeats."""
    line = re.sub(rf"^{RANK}", "", line)
    line = re.sub(r"^\[?[IWEF]\d{4} [\d:.]+ +\d+ ", "", line)
    return line.strip()


def _traceback_end(lines: list[str], i: int, prefix: str) -> int:
    """Index of a traceback's error line: the first line after it that is not indented."""
    j = i + 1
    while j < len(lines):
        body = lines[j][len(prefix):] if lines[j].startswith(prefix) else lines[j]
        if body.strip() and not body.startswith((" ", "\t")):
            return j
        j += 1
    return len(lines) - 1


def for_page(output: str, show: dict | None = None) -> list[str]:
    show = show or {}
    lines = [ANSI.sub("", ln) for ln in output.rstrip().splitlines()]
    for pattern, repl in show.get("cut", []) if not show.get("full") else []:
        lines = [re.sub(pattern, repl, ln) for ln in lines]
    summary = summary_line(output)
    if lines and summary is not None and lines[-1].strip() == summary:
        lines = lines[:-1]
    if show.get("full"):
        return lines
    drop = [re.compile(p) for p in show.get("drop", [])]
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    # A stored tail may begin inside a traceback (with a frame's "File" line): treat its
    # start as one. Other indented first lines, such as a table's header, stay.
    first = re.match(rf"^({RANK})", lines[0]).group(1) if lines else ""
    if lines and re.match(r"^\s*File \"", lines[0][len(first):]):
        i = _traceback_end(lines, -1, first)
    while i < len(lines):
        line = lines[i]
        m = TRACEBACK.match(line)
        if m:
            j = _traceback_end(lines, i, m.group(1))
            error = lines[j]
            if not any(p.search(error) for p in drop):
                out.append(error.rstrip())
            i = j + 1
            # torchrun's report follows its ChildFailedError: keep only the report's title.
            if i < len(lines) and REPORT_RULE.match(lines[i]) and "ChildFailedError" in error:
                k = i + 1
                while k < len(lines) and not REPORT_RULE.match(lines[k]):
                    k += 1
                title = lines[i + 1] if i + 1 < len(lines) else ""
                if title.strip() and not any(p.search(title) for p in drop):
                    out.append(title.rstrip())
                i = k + 1
            continue
        i += 1
        if (BANNER.match(line) or CHAINED.match(line) or CPP_STACK.match(line)
                or any(p.search(line) for p in TEARDOWN)
                or any(p.search(line) for p in drop)):
            continue
        if DIAGNOSTIC.search(line):
            key = _strip_prefix(line)
            if key in seen:
                continue
            seen.add(key)
        out.append(line.rstrip())
    # Blank lines left where something was dropped: at most one in a row, none at the ends.
    tidy = [ln for k, ln in enumerate(out) if ln.strip() or (k and out[k - 1].strip())]
    while tidy and not tidy[0].strip():
        tidy.pop(0)
    while tidy and not tidy[-1].strip():
        tidy.pop()
    return tidy
