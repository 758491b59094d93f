"""Run one command as a child subreaper, so that nothing it starts can outlive it.

    python launch.py REPORT TIMEOUT GRACE -- bash -c SCRIPT

The launcher marks itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): every
process the command starts stays its descendant even when its parent exits or it calls
setsid, because Linux re-parents orphans to the nearest subreaper instead of init. When
the command ends, the launcher gives its descendants GRACE seconds to exit, kills and
reaps whatever is left, and writes a JSON report to REPORT:

    {"exit": 0, "wall_s": 1.5, "timed_out": false, "subreaper": true,
     "survivors": [[4242, "sleep 120"]]}

On TIMEOUT, or on SIGTERM from the runner, it kills the command and all its
descendants at once. The standard library only: the GPU tier runs it with the
machine's own Python.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.05


def _alive_children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X"):
            continue  # exited, waiting to be reaped
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    """Live processes below root, parents before children."""
    children = _alive_children_map()
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(0), []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def reap() -> list[tuple[int, int]]:
    """Reap every child that has exited; (pid, exit code) for each."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, os.waitstatus_to_exitcode(status)))


def kill_all(me: int) -> None:
    """SIGKILL every descendant until none is left (orphans of the killed come to us)."""
    for _ in range(200):
        pids = descendants(me)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(POLL_S)
        reap()
    reap()


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 5:
        print("usage: launch.py REPORT TIMEOUT GRACE -- COMMAND...", file=sys.stderr)
        return 2
    report, timeout, grace = argv[0], float(argv[1]), float(argv[2])
    command = argv[argv.index("--") + 1 :]
    me = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)
    subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))

    started = time.monotonic()
    child = os.posix_spawnp(command[0], command, dict(os.environ))
    deadline = started + timeout
    code, timed_out = None, False
    while code is None:
        for pid, status in reap():
            if pid == child:
                code = status
        if code is not None:
            break
        if stop or time.monotonic() > deadline:
            timed_out = not stop
            kill_all(me)
            for pid, status in reap():
                if pid == child:
                    code = status
            code = code if code is not None else -signal.SIGKILL
            break
        time.sleep(POLL_S)

    wall_s = time.monotonic() - started
    # Orderly shutdowns get a moment; anything still running after it was left behind.
    survivors: list[list] = []
    if not timed_out and not stop:
        end = time.monotonic() + grace
        while descendants(me) and time.monotonic() < end and not stop:
            reap()
            time.sleep(POLL_S)
        survivors = [[pid, cmdline(pid)] for pid in descendants(me)]
    kill_all(me)

    with open(report, "w") as f:
        json.dump({"exit": code, "wall_s": round(wall_s, 3), "timed_out": timed_out, "stopped": bool(stop),
                   "subreaper": subreaper, "survivors": survivors}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
