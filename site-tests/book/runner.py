"""Runs a registered block the way a reader would: its lines, in order, from the repo root.

Each page's blocks run in page order in one scratch copy of the repository, so a
block can use what an earlier block on the same page produced (the reader's
terminal works the same way). A block with `repeat: N` runs N times there, and
every run must pass.

Nothing a block starts survives it. The block's shell runs under a small launcher
(`launch.py`) that is a child subreaper: every process below it, even one that calls
setsid and clears its environment, stays its descendant, and when the shell ends the
launcher kills and reaps what is left; a block that left anything running fails. As a
second net every process carries a token in its environment, and any process still
holding it afterwards is killed too. Every read of the block's output has a deadline,
so a process that escaped with the output pipe cannot hold the runner past the timeout.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .checks import (
    check_exit,
    check_metrics,
    check_output,
    check_wall,
    last_json,
    lookup,  # noqa: F401  (imported from here by older code)
    median_metrics,
    summary_line,
)
from .registry import REPO, Entry, parse_ref, section_text

LAUNCHER = Path(__file__).with_name("launch.py")
# Seconds a block's processes get to exit by themselves after its shell ends.
GRACE_S = 5.0
# Beyond its timeout and grace, how long the runner waits for the launcher itself.
BACKSTOP_S = 20.0
# Seconds the runner keeps reading after the launcher exits (a process that escaped
# and holds the output pipe would otherwise keep the read open for ever).
DRAIN_S = 2.0
MAX_OUTPUT = 32 * 2**20
# What the runner sets in every block's environment, recorded with each record.
OVERRIDES = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "Agg",
    # GPU machines that others share keep NVLink multicast off; never switch it on.
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
# Variables from the machine's environment that change what NCCL does; recorded too.
RECORDED_PREFIXES = ("NCCL_", "TORCH_NCCL_", "NVSHMEM_", "TORCH_SYMM_MEM_")

TOKEN_VAR = "BOOK_BLOCK_TOKEN"
_SKIP = {".git", ".venv", "site", "runs", ".pytest_cache", ".ruff_cache", "__pycache__"}


@dataclass
class Result:
    exit: int
    output: str
    wall_s: float
    metrics: dict | None = None
    failures: list[str] = field(default_factory=list)
    # Evidence for the record: each run's metrics and wall time, the lines each output
    # pattern matched, the summary line, and the environment the runner set.
    runs: list[dict] = field(default_factory=list)
    matched: dict[str, list[str]] = field(default_factory=dict)
    summary: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def _repo_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout
        return [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        return [
            str(p.relative_to(REPO)) for p in REPO.rglob("*")
            if p.is_file() and not (set(p.relative_to(REPO).parts) & _SKIP)
        ]


def scratch_copy(dest: Path | None = None) -> Path:
    """A copy of the repository's files (not .git, .venv, site/ or runs/)."""
    dest = Path(dest or tempfile.mkdtemp(prefix="book-block-"))
    for rel in _repo_files():
        src = REPO / rel
        if not src.is_file() or set(Path(rel).parts) & _SKIP:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def block_env(workdir: Path, token: str) -> dict[str, str]:
    """The reader's shell: the running interpreter as `python`, its scripts on PATH."""
    # The environments `make setup` builds (.venv, and .venv-checkov for chapter 8's policy
    # scanner), so that it finds them ready and blocks can call their programs by path.
    for venv in sorted(REPO.glob(".venv*")):
        if venv.is_dir() and not (workdir / venv.name).exists():
            (workdir / venv.name).symlink_to(venv)
    shim = workdir / ".book-bin"
    shim.mkdir(exist_ok=True)
    py = shim / "python"
    if not py.exists():
        # A script, not a symlink: a symlinked venv interpreter forgets its venv.
        py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        py.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(shim), str(Path(sys.executable).parent), env.get("PATH", "")])
    env[TOKEN_VAR] = token
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONHASHSEED"] = "0"
    for k, v in OVERRIDES.items():
        env.setdefault(k, v)
    return env


def overrides(env: dict[str, str]) -> dict[str, str]:
    """What the runner set, and the machine's NCCL settings, as a record states them."""
    keep = {k: env[k] for k in OVERRIDES if k in env}
    keep.update({k: v for k, v in env.items() if k.startswith(RECORDED_PREFIXES)})
    return dict(sorted(keep.items()))


def processes_with(token: str) -> list[int]:
    """PIDs of live processes whose environment carries the token."""
    needle = f"{TOKEN_VAR}={token}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                stat = (d / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    pids.append(int(d.name))
        except OSError:
            continue
    return pids


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def _read_all(proc: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
    """Everything the launcher's pipe delivers, each read bounded by a deadline.

    Returns the bytes and whether the runner had to stop the launcher itself.
    """
    fd = proc.stdout.fileno()
    chunks, size, forced, drain_until = [], 0, False, None
    while True:
        now = time.monotonic()
        if proc.poll() is not None and drain_until is None:
            drain_until = now + DRAIN_S
        if drain_until is not None and now > drain_until:
            break  # the launcher is gone; whoever still holds the pipe is not waited for
        if now > deadline:
            if not forced:
                forced = True
                proc.send_signal(signal.SIGTERM)  # the launcher kills the block's processes
                deadline = now + BACKSTOP_S
            else:
                _signal_group(proc.pid, signal.SIGKILL)
                break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
        size += len(data)
        while size > MAX_OUTPUT and len(chunks) > 1:
            size -= len(chunks.pop(1))  # keep the start and the end
    return b"".join(chunks), forced


def run_text(text: str, workdir: Path, timeout: float, grace: float | None = None,
             prologue: str = "set -eo pipefail\n") -> tuple[Result, list]:
    """Run a shell block's lines with `set -e`; return the result and what it left running.

    The survivors are (pid, command line) pairs; they have been killed.
    """
    grace = GRACE_S if grace is None else grace
    token = uuid.uuid4().hex
    env = block_env(workdir, token)
    script = prologue + text + "\n"
    with tempfile.TemporaryDirectory(prefix="book-launch-") as tmp:
        report = Path(tmp) / "report.json"
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(report), str(timeout), str(grace), "--", "bash", "-c", script],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        out, forced = _read_all(proc, start + timeout + grace + BACKSTOP_S)
        try:
            proc.wait(timeout=BACKSTOP_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        wall = time.monotonic() - start
        try:
            rep = json.loads(report.read_text())
        except (OSError, ValueError):
            rep = {"exit": proc.returncode, "timed_out": forced, "survivors": []}
    survivors = [tuple(s) for s in rep.get("survivors", [])]
    # The second net: anything that still carries the token escaped the launcher.
    escaped = processes_with(token)
    if escaped:
        _kill(escaped)
        survivors += [(pid, "?") for pid in escaped]
    res = Result(exit=rep.get("exit"), output=out.decode(errors="replace"), wall_s=rep.get("wall_s", wall),
                 overrides=overrides(env))
    if rep.get("timed_out") or forced:
        res.failures.append(f"timed out after {timeout:.0f} s")
    if rep.get("subreaper") is False:
        res.failures.append("the launcher could not become a child subreaper")
    return res, survivors


def check(entry: Entry, res: Result, workdir: Path) -> list[str]:
    """The block's expectation applied to one run."""
    failures = check_exit(entry, res.exit)
    out_failures, res.matched = check_output(entry, res.output)
    failures += out_failures
    for rel in (entry.expect or {}).get("files", []):
        if not (workdir / rel).exists():
            failures.append(f"file {rel} was not produced")
    failures += check_metrics(entry, res.metrics)
    failures += [f for f in check_wall(entry, res.wall_s) if not res.failures]
    return failures


def block_text(entry: Entry) -> str:
    return section_text(*parse_ref(entry.key))


def run_once(entry: Entry, workdir: Path, text: str | None = None) -> Result:
    text = block_text(entry) if text is None else text
    res, survivors = run_text(text, workdir, entry.timeout)
    res.metrics = last_json(res.output)
    res.summary = summary_line(res.output)
    res.failures += check(entry, res, workdir)
    if survivors:
        shown = ", ".join(f"{pid} {cmd[:60]}" for pid, cmd in survivors)
        res.failures.append(f"left {len(survivors)} process(es) running: {shown}")
    return res


def run_block(entry: Entry, workdir: Path, text: str | None = None) -> Result:
    """Run a block `repeat` times in the same folder; every run must pass.

    The result is the last run's, with every run's metrics and wall time in `runs` and
    the median of each numeric metric across runs in `metrics`.
    """
    runs: list[dict] = []
    res = None
    for i in range(entry.repeat):
        res = run_once(entry, workdir, text)
        runs.append({"exit": res.exit, "wall_s": round(res.wall_s, 2), "metrics": res.metrics})
        if res.failures:
            if entry.repeat > 1:
                res.failures = [f"run {i + 1} of {entry.repeat}: {f}" for f in res.failures]
            break
    res.runs = runs
    if not res.failures:
        res.metrics = median_metrics([r["metrics"] for r in runs])
        res.wall_s = max(r["wall_s"] for r in runs)
    return res
