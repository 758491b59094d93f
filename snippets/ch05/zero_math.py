"""Bytes per rank of each ZeRO stage, and what a step sends, for one of chapter 3's models.

With bf16 on, DeepSpeed keeps per parameter a bf16 weight (2 bytes) and a bf16
gradient (2), an fp32 master weight (4) and AdamW's two fp32 moments (8): chapter 1's
16 bytes, split as the ZeRO paper splits them. Stage 1 partitions the 12 bytes of
optimizer state over the ranks, stage 2 the gradients as well, stage 3 the weights too.
--measured checks a train_zero.py run against the arithmetic for its own model.

    python snippets/ch05/zero_math.py --preset tiny 1b --world-size 2
    python snippets/ch05/zero_math.py --measured runs/ch05/memory-3.json
"""

import argparse
import gc
import itertools
import json
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import PRESETS, build  # noqa: E402

SIZES = ("vocab_size", "seq_len", "n_layer", "n_head", "d_model")
STEP_BYTES = 4  # AdamW keeps one fp32 step counter per tensor it updates


# --8<-- [start:arithmetic]
def per_rank(shapes, stage, world, dtype="bf16", accum=1, zero=None):
    """Bytes on the fullest rank once backward is done, as DeepSpeed 0.19 lays them out.

    w is the working copy's bytes per element: 2 in bf16, 4 in fp32. `zero` is the
    config's zero_optimization section, for its bucket and persistence settings.
    """
    zero, w = zero or {}, (2 if dtype == "bf16" else 4)
    sizes = [math.prod(s) for s in shapes]
    n, shard = sum(sizes), math.ceil(sum(sizes) / world)
    bucket, buckets = int(zero.get("reduce_bucket_size", 5e8)), 0
    if stage == 0:  # everything on every rank; fp32 training needs no separate master
        weights, grads, master = w * n, w * n, (4 * n if dtype == "bf16" else 0)
        moments = 8 * n + STEP_BYTES * len(sizes)
    elif stage < 3:  # one flat buffer, cut into `world` equal ranges
        weights, master, moments = w * n, 4 * shard, 8 * shard + STEP_BYTES
        # A rank's gradient buffer holds every tensor that overlaps its range, whole.
        ends = list(itertools.accumulate(sizes))
        grads = w * max(sum(sz for sz, end in zip(sizes, ends, strict=True)
                            if end > r * shard and end - sz < (r + 1) * shard)
                        for r in range(world))
        if stage == 1 and accum > 1:  # between micro-steps: full gradients, and buckets
            grads, buckets = w * n, w * bucket * (2 if zero.get("overlap_comm") else 1)
    else:  # each tensor partitioned; small ones also kept whole on every rank
        persist = zero.get("stage3_param_persistence_threshold", 1e5)
        weights = w * shard + w * sum(sz for sz in sizes if sz < persist)
        grads, master, moments = w * shard, 4 * shard, 8 * shard + STEP_BYTES
        buckets = w * bucket  # the gradient bucket stage 3 keeps between steps
    low = weights + grads + buckets if dtype == "bf16" else 0
    total = weights + grads + buckets + master + moments
    return {"total": total, "bf16": low, "fp32": total - low, "weights": weights, "grads": grads,
            "buckets": buckets, "master": master, "moments": moments}
# --8<-- [end:arithmetic]


# --8<-- [start:state-bytes]
def state_bytes(previous=None):
    """Bytes of floating-point tensors this process holds, each storage counted once.

    Whatever DeepSpeed keeps (weights, gradients, master weights, moments, buckets) is
    a tensor somewhere, so the sum is the state with no knowledge of DeepSpeed's layout.
    Tensors held on the host while the run uses a GPU are counted again under "host".
    """
    gc.collect()  # garbage still waiting for collection is not state
    seen = {}
    with warnings.catch_warnings():  # touching every object wakes deprecation warnings
        warnings.simplefilter("ignore")
        # Plain tensors only: the compiler's fake tensors hold no memory.
        plain = (torch.Tensor, torch.nn.Parameter)
        tensors = [obj for obj in gc.get_objects() if type(obj) in plain]
    for obj in tensors:
        for t in (obj, obj.grad if isinstance(obj, torch.nn.Parameter) else None):
            if t is not None and t.is_floating_point() and t.untyped_storage().data_ptr():
                seen[t.untyped_storage().data_ptr()] = t
    out = {"total": 0, "fp32": 0, "bf16": 0, "host": 0}
    for t in seen.values():
        nbytes = t.untyped_storage().nbytes()
        out["total"] += nbytes
        out["fp32" if t.dtype == torch.float32 else "bf16"] += nbytes
        if t.device.type == "cpu" and torch.cuda.is_available():
            out["host"] += nbytes
    return {k: max(v, (previous or {}).get(k, 0)) for k, v in out.items()}
# --8<-- [end:state-bytes]


def shapes_of(model_cfg):
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = build("tiny", **model_cfg)
    return [tuple(p.shape) for p in model.parameters()]


def check(paths):
    """Compare what train_zero.py runs measured with the arithmetic for their model and world."""
    rows, worst, worst_bytes = [], 0.0, 0
    for path in paths:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist; write it with train_zero.py --metrics-out")
        run = json.loads(path.read_text().strip().splitlines()[-1])
        zero = json.loads(Path(run["config"]).read_text())["zero_optimization"]
        want = per_rank(shapes_of(run["model"]), run["zero_stage"], run["world_size"],
                        run["dtype"], run["grad_accum"], zero)
        got = run["state_bytes_per_rank"]
        diff = abs(got["total"] - want["total"]) / want["total"]
        worst, worst_bytes = max(worst, diff), max(worst_bytes, abs(got["total"] - want["total"]))
        rows.append((run, got, want, diff))
    run = rows[0][0]
    print(f"bytes per rank once backward is done: {run['world_size']} ranks, {run['dtype']}, "
          f"{run['grad_accum']} micro-steps per step; expected, by part")
    parts = ("weights", "grads", "master", "moments", "buckets")
    print(f"{'stage':<6}{'measured':>14}{'expected':>14}{'diff':>7}"
          + "".join(f"{k:>12}" for k in parts))
    for run, got, want, diff in rows:
        print(f"{run['zero_stage']:<6}{got['total']:>14,}{want['total']:>14,}{100 * diff:6.2f}%"
              + "".join(f"{want[k]:>12,}" for k in parts))
    print(json.dumps({"stages": [r[0]["zero_stage"] for r in rows],
                      "measured": {str(r[0]["zero_stage"]): r[1]["total"] for r in rows},
                      "expected": {str(r[0]["zero_stage"]): r[2]["total"] for r in rows},
                      "max_abs_diff": worst_bytes, "max_rel_diff": round(worst, 5),
                      "within_10pct": worst <= 0.10}))
    sys.exit(0 if worst <= 0.10 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), nargs="+", default=["tiny"])
    for name in SIZES:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the preset")
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--measured", type=Path, nargs="+", help="train_zero.py --metrics-out files")
    args = ap.parse_args()
    if args.measured:
        check(args.measured)
    if args.world_size < 1:
        sys.exit("error: --world-size must be at least 1")
    for preset in args.preset:
        cfg = dict(vars(PRESETS[preset]))
        cfg.update({k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
        shapes, w = shapes_of(cfg), args.world_size
        n = sum(math.prod(s) for s in shapes)
        unit, scale = ("GiB", 2**30) if n > 1e8 else ("MiB", 2**20)
        print(f"{preset}: {n / 1e6:,.1f}M parameters, bf16 with fp32 master weights, "
              f"{w} ranks ({unit} per rank)")
        print(f"{'stage':<8}{'weights':>10}{'grads':>10}{'master':>10}{'moments':>10}{'total':>10}")
        out = {"params": n, "world_size": w, "gib": {}}
        for stage in range(4):
            # Stage 1 as the ZeRO paper counts it: full gradients while a step accumulates.
            b = per_rank(shapes, stage, w, accum=2, zero={"reduce_bucket_size": 0})
            print(f"{stage:<8}" + "".join(f"{b[k] / scale:10.3f}" for k in
                                          ("weights", "grads", "master", "moments", "total")))
            out[f"stage{stage}"] = b["total"]
            out["gib"][f"stage{stage}"] = round(b["total"] / 2**30, 3)
    print(json.dumps(out))  # the last preset's


if __name__ == "__main__":
    main()
