"""Runs a registered block the way a reader would: its lines, in order, from the repo root.

Each page's blocks run in page order in one scratch copy of the repository, so a
block can use what an earlier block on the same page produced (the reader's
terminal works the same way). A block must not leave a process behind: every
process it starts carries a token in its environment, and after the block ends
any process still holding the token fails the block and is killed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .registry import METRIC_RE, REPO, Entry, parse_ref, section_text

TOKEN_VAR = "BOOK_BLOCK_TOKEN"
_SKIP = {".git", ".venv", "site", "runs", ".pytest_cache", ".ruff_cache", "__pycache__"}


@dataclass
class Result:
    exit: int
    output: str
    wall_s: float
    metrics: dict | None = None
    failures: list[str] = field(default_factory=list)

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
    for name in (".venv", ".venv-vllm"):  # so `make setup` and `make setup-vllm` find them ready
        venv = REPO / name
        if venv.is_dir() and not (workdir / name).exists():
            (workdir / name).symlink_to(venv)
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
    env.setdefault("MPLBACKEND", "Agg")
    # GPU machines that others share keep NVLink multicast off; never switch it on.
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    env.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
    env.setdefault("NVSHMEM_DISABLE_NVLS", "1")
    return env


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
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(d.name))
        except OSError:
            continue
    return pids


def _kill_all(token: str, pgid: int | None) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    for pid in processes_with(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_text(text: str, workdir: Path, timeout: float) -> tuple[Result, list[int]]:
    """Run a shell block's lines with `set -e`; return the result and any survivors."""
    token = uuid.uuid4().hex
    env = block_env(workdir, token)
    script = "set -eo pipefail\n" + text + "\n"
    start = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", script], cwd=workdir, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_all(token, proc.pid)
        out, _ = proc.communicate()
    wall = time.monotonic() - start
    # Give orderly shutdowns a moment, then look for anything left behind.
    deadline = time.monotonic() + 5
    survivors = processes_with(token)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = processes_with(token)
    if survivors:
        _kill_all(token, None)
    res = Result(exit=proc.returncode, output=out or "", wall_s=wall)
    if timed_out:
        res.failures.append(f"timed out after {timeout:.0f} s")
    return res, survivors


def last_json(output: str) -> dict | None:
    """The last line of the output that is a JSON object: a script's summary line.

    Lines other processes print after it (NCCL tearing down a communicator, another
    rank finishing) are skipped.
    """
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def lookup(metrics: dict, dotted: str):
    value = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check(entry: Entry, res: Result, workdir: Path) -> list[str]:
    exp = entry.expect or {}
    failures = []
    want_exit = exp.get("exit", 0)
    if res.exit != want_exit:
        failures.append(f"exit code {res.exit}, expected {want_exit}")
    for pattern in exp.get("output", []):
        if not re.search(pattern, res.output, re.MULTILINE):
            failures.append(f"output has no match for {pattern!r}")
    for pattern in exp.get("absent", []):
        if re.search(pattern, res.output, re.MULTILINE):
            failures.append(f"output matches {pattern!r}, which must be absent")
    for rel in exp.get("files", []):
        if not (workdir / rel).exists():
            failures.append(f"file {rel} was not produced")
    for name, cond in exp.get("metrics", {}).items():
        value = lookup(res.metrics or {}, name)
        op, bound = METRIC_RE.match(str(cond)).groups()
        ok = isinstance(value, (int, float)) and {
            ">=": value >= float(bound), "<=": value <= float(bound), ">": value > float(bound),
            "<": value < float(bound), "==": value == float(bound),
        }[op]
        if not ok:
            failures.append(f"metric {name} = {value!r}, expected {op} {bound}")
    return failures


def run_block(entry: Entry, workdir: Path) -> Result:
    path, section = parse_ref(entry.key)
    text = section_text(path, section)
    res, survivors = run_text(text, workdir, entry.timeout)
    res.metrics = last_json(res.output)
    res.failures += check(entry, res, workdir)
    if survivors:
        res.failures.append(f"left {len(survivors)} process(es) running: {survivors}")
    return res
