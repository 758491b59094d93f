"""Bytes per rank for parameters, gradients and AdamW state under DDP, FSDP2 and HSDP.

Training with AdamW keeps, per parameter, an fp32 weight (4 bytes), an fp32 gradient
(4) and two fp32 moments (8). DDP holds all of it on every rank; FSDP2 splits every
tensor along dim 0 over the shard group; HSDP shards within groups and replicates
across them. A bf16 MixedPrecisionPolicy changes none of this: it decides what is
gathered and computed, not what is stored. --measured checks a train_fsdp.py run:

    python snippets/ch04/memory_math.py
    python snippets/ch04/memory_math.py --preset 1b --world-size 8 --hsdp 2
    python snippets/ch04/memory_math.py --params 70e9 --world-size 64
    python snippets/ch04/memory_math.py --measured runs/ch04/fsdp-memory.json
"""

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

# Chapter 3's model, the one train_fsdp.py trains.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import PRESETS, build  # noqa: E402

SIZES = ("n_layer", "d_model", "n_head", "seq_len", "vocab_size")
KINDS = ("params", "grads", "optim", "total")


# --8<-- [start:arithmetic]
BYTES = {"params": 4, "grads": 4, "optim": 8}  # fp32 weight, fp32 gradient, AdamW's two moments
STEP_BYTES = 4  # AdamW also keeps one fp32 step counter per tensor


def per_rank(shapes, shard, counters=None):
    """Bytes on the fullest rank when each tensor is split along dim 0 over `shard` ranks.

    FSDP2 gives each rank ceil(rows / shard) rows, fewer to the last ranks, whose
    storage it pads to the same size so that every all-gather moves equal pieces.
    """
    elems = sum(math.ceil(s[0] / shard) * math.prod(s[1:]) for s in shapes)
    out = {k: elems * b for k, b in BYTES.items()}
    out["optim"] += STEP_BYTES * (len(shapes) if counters is None else counters)
    out["total"] = sum(out.values())
    return out
# --8<-- [end:arithmetic]


# --8<-- [start:state-bytes]
def state_bytes(model, opt):
    """Bytes of parameters, gradients and optimizer state that this rank holds."""
    def local(t):  # of a DTensor, this rank stores the local shard only
        t = t.to_local() if isinstance(t, DTensor) else t
        return t.numel() * t.element_size()
    params = list(model.parameters())
    return {"params": sum(local(p) for p in params),
            "grads": sum(local(p.grad) for p in params if p.grad is not None),
            "optim": sum(local(v) for s in opt.state.values() for v in s.values()
                         if torch.is_tensor(v))}
# --8<-- [end:state-bytes]


# --8<-- [start:saved-activations]
@contextlib.contextmanager
def saved_activations(enabled=True):
    """Count the bytes autograd keeps for backward inside the `with`, parameters aside."""
    storages = {}

    def pack(t):
        if not isinstance(t, torch.nn.Parameter):  # views of one storage count once
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if enabled else \
            contextlib.nullcontext():
        yield storages
# --8<-- [end:saved-activations]


def model_shapes(cfg):
    """Shapes of the root's own parameters and of each block's, as fully_shard groups them."""
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = build("tiny", **cfg)
    blocks = [[tuple(p.shape) for p in b.parameters()] for b in model.blocks]
    in_blocks = {id(p) for b in model.blocks for p in b.parameters()}
    root = [tuple(p.shape) for p in model.parameters() if id(p) not in in_blocks]
    return root, blocks


def table(title, rows):
    unit, scale = ("GiB", 2**30) if rows[0][2]["total"] >= 2**30 else ("MiB", 2**20)
    print(f"{title}\n{'':<9}{'mesh':>8}" + "".join(f"{k:>10}" for k in KINDS) + f"   {unit}/rank")
    for name, mesh, b in rows:
        print(f"{name:<9}{mesh:>8}" + "".join(f"{b[k] / scale:10.3f}" for k in KINDS))
    return unit, scale


def check(path):
    """Compare the state a train_fsdp.py run counted with the arithmetic for its mesh."""
    if not path.is_file():
        sys.exit(f"error: {path} does not exist; write it with train_fsdp.py --metrics-out")
    run = json.loads(path.read_text().strip().splitlines()[-1])
    root, blocks = model_shapes(run["model"])
    shard, mesh = run["mesh"][-1], " x ".join(map(str, run["mesh"]))
    shapes = root + sum(blocks, [])
    want, got = per_rank(shapes, shard), run["state_bytes_per_rank"]
    table(f"state on the fullest of {run['world_size']} rank(s), and what DDP would hold",
          [("measured", mesh, got), ("expected", mesh, want), ("DDP", "", per_rank(shapes, 1))])
    diff = max(abs(got[k] - want[k]) / want[k] for k in KINDS)
    print(f"largest difference: {100 * diff:.4f}%")
    print(json.dumps({"world_size": run["world_size"], "shard": shard, "measured": got,
                      "expected": want, "max_rel_diff": diff, "within_10pct": diff <= 0.10}))
    sys.exit(0 if diff <= 0.10 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="tiny")
    for name in SIZES:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the preset")
    ap.add_argument("--params", type=float, help="a bare parameter count instead of a model")
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--hsdp", type=int, metavar="R", help="also show HSDP with R replicas")
    ap.add_argument("--measured", type=Path, help="a train_fsdp.py --metrics-out file to check")
    args = ap.parse_args()
    if args.measured:
        check(args.measured)
    w, r = args.world_size, args.hsdp
    if w < 1:
        sys.exit("error: --world-size must be at least 1")
    if r is not None and (r < 1 or w % r):
        sys.exit(f"error: --hsdp {r} does not divide --world-size {w}")
    if args.params:
        root, blocks, label = [(int(args.params),)], [], "--params"
    else:
        cfg = dict(vars(PRESETS[args.preset]))
        cfg.update({k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
        root, blocks = model_shapes(cfg)
        label = f"{args.preset} ({', '.join(f'{k} {v}' for k, v in cfg.items())})"
    shapes = root + sum(blocks, [])
    n = sum(math.prod(s) for s in shapes)
    counters = 0 if args.params else None  # a bare count has no tensors to count
    rows = [("DDP", f"{w} x 1", per_rank(shapes, 1, counters)),
            ("FSDP2", f"1 x {w}", per_rank(shapes, w, counters))]
    if r:
        rows.append(("HSDP", f"{r} x {w // r}", per_rank(shapes, w // r, counters)))
    count = f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"
    unit, scale = table(f"{label}: {count} parameters, AdamW, {w} ranks", rows)
    pad = rows[1][2]["params"] - BYTES["params"] * n / w
    print(f"FSDP2 padding on the fullest rank: {pad / 2**20:.3f} MiB of parameters")
    out = {"params": n, "world_size": w, **{name.lower(): b for name, _, b in rows}}
    if blocks:
        # Not in the table: the unsharded bf16 copies that FSDP2 all-gathers during a step.
        g = {"root": 2 * sum(math.prod(s) for s in root),
             "block": 2 * sum(math.prod(s) for s in blocks[0])}
        g["all_blocks"] = g["block"] * len(blocks)
        print(f"gathered in bf16 ({unit}): root {g['root'] / scale:.3f} all step, "
              f"{g['block'] / scale:.3f} per block in flight, {g['all_blocks'] / scale:.3f} "
              "for all blocks with --no-reshard-after-forward")
        out["gathered_bf16"] = g
    print(json.dumps(out))


if __name__ == "__main__":
    main()
