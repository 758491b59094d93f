"""Run the GPU tier: every gpu:N block with N no larger than the GPUs here, in page order.

    python site-tests/run_gpu_tier.py               # all that fit on this machine
    python site-tests/run_gpu_tier.py --only ch02   # blocks whose key contains "ch02"
    python site-tests/run_gpu_tier.py --only ch04/commands.sh:fsdp-1gpu   # that block alone

Each block runs in a scratch copy of the repository (removed at the end), under the
same runner and checks as the CPU tier (`repeat: N` runs it N times), and leaves a
record in site-tests/records/ whether it passed or failed. Only the standard library,
PyYAML and torch are needed.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book import records, registry, runner  # noqa: E402
from book.contract import inventory  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="substring of block keys to run")
    ap.add_argument("--list", action="store_true", help="list the blocks that would run, and stop")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("error: the GPU tier needs PyTorch with CUDA in this Python")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0:
        sys.exit("error: no CUDA GPU is visible; the GPU tier has nothing to run here")
    entries, _ = registry.load()
    inv = inventory(entries)
    for problem in inv.problems:
        print(f"warning: {problem}", file=sys.stderr)
    # Page order first (later blocks may use what earlier ones made), then blocks that
    # are registered but on no page yet, so their records can exist before their text.
    ordered = [(b.page, b.ref) for b in inv.blocks if b.ref in entries]
    on_pages = {ref for _, ref in ordered}
    ordered += [("(no page)", k) for k in sorted(entries) if k not in on_pages]
    by_page: dict[str, list] = {}
    for page, ref in ordered:
        e = entries[ref]
        # A full key selects that block alone; anything else is a substring of keys.
        if e.gpus and (not args.only or any(o == e.key or (o not in entries and o in e.key)
                                            for o in args.only)):
            if e not in by_page.setdefault(page, []):
                by_page[page].append(e)
    todo = [(p, e) for p, es in by_page.items() for e in es if e.gpus <= gpus]
    skipped = [e.key for es in by_page.values() for e in es if e.gpus > gpus]
    env = records.environment()
    print(f"GPU tier on {gpus} x {env['gpu']}: {len(todo)} block(s) to run, "
          f"{len(skipped)} need more GPUs", flush=True)
    if args.list:
        for p, e in todo:
            print(f"  {e.tier:7} {e.key}  ({p})")
        return 0
    failed = 0
    workdirs: dict[str, Path] = {}
    try:
        for page, e in todo:
            if page not in workdirs:
                workdirs[page] = runner.scratch_copy()
            start = time.time()
            runs = f", {e.repeat} runs" if e.repeat > 1 else ""
            print(f"--> {e.key} ({e.tier}, timeout {e.timeout} s{runs})", flush=True)
            res = runner.run_block(e, workdirs[page])
            path = records.write(e, res, env=env)
            verdict = "PASS" if not res.failures else "FAIL: " + "; ".join(res.failures)
            print(res.tail(15))
            print(f"<-- {verdict} in {time.time() - start:.0f} s; record {path.name}", flush=True)
            failed += bool(res.failures)
    finally:
        for d in workdirs.values():
            shutil.rmtree(d, ignore_errors=True)
    for key in skipped:
        print(f"skipped (needs more GPUs): {key}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
