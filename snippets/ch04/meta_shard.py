"""Shard a model on the meta device with FSDP2 and count each rank's state, without memory.

The model is built under torch.device("meta"), where tensors have shapes but no
storage, then sharded by train_fsdp.py's own apply_fsdp over gloo CPU processes.
AdamW, built after fully_shard as in training, creates its moments for the shards;
each rank then counts what it would hold and compares it with memory_math.py's
arithmetic. Nothing is ever allocated, so a 12B model shards on a laptop:

    torchrun --standalone --nproc-per-node 2 snippets/ch04/meta_shard.py --preset 1b --d-model 5120 --n-head 40 --n-layer 38
"""  # noqa: E501

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from memory_math import KINDS, per_rank, state_bytes
from parallelize import apply_fsdp, make_mesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import PRESETS, build  # noqa: E402

SIZES = ("n_layer", "d_model", "n_head", "seq_len", "vocab_size")


def fail(msg):
    # Every rank sees the same bad input: rank 0 says why, and all of them exit non-zero.
    sys.exit(f"error: {msg}" if os.environ.get("RANK", "0") == "0" else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="1b")
    for name in SIZES:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the preset")
    args = ap.parse_args()
    if "RANK" not in os.environ:
        fail("launch this script with torchrun, e.g. torchrun --nproc-per-node 2 " + sys.argv[0])
    cfg = dict(vars(PRESETS[args.preset]))
    cfg.update({k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
    if min(cfg.values()) <= 0:
        fail("the model's sizes must be positive")
    if cfg["d_model"] % cfg["n_head"]:
        fail(f"d_model {cfg['d_model']} is not divisible by n_head {cfg['n_head']}")
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    # --8<-- [start:meta-shard]
    with torch.device("meta"):  # shapes only: __init__'s initialisation does nothing
        model = build(**cfg)
    n = model.num_params()
    shapes = [tuple(p.shape) for p in model.parameters()]  # the tied head counts once
    apply_fsdp(model, make_mesh("cpu", world))  # the same groups as train_fsdp.py
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)  # after fully_shard: it sees shards
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # a gradient shard, as backward's reduce-scatter leaves
    opt.step()  # creates AdamW's two moments, one per shard, still on meta
    # --8<-- [end:meta-shard]

    mine = state_bytes(model, opt)
    mine["total"] = sum(mine.values())
    on_meta = all(p.to_local().is_meta for p in model.parameters())
    tied = model.head.weight is model.tok_emb.weight
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    got = [None] * world
    dist.all_gather_object(got, {"state": mine, "on_meta": on_meta, "tied": tied, "rss": rss_gib})
    want, ddp = per_rank(shapes, world), per_rank(shapes, 1)
    diff = max(abs(g["state"][k] - want[k]) / want[k] for g in got for k in KINDS)
    all_meta, rss = all(g["on_meta"] for g in got), max(g["rss"] for g in got)
    if rank == 0:
        print(f"{n / 1e9:.2f}B parameters built on the meta device; fully_shard over "
              f"{world} gloo ranks; head still tied to the embedding: {tied}")
        print(f"{'state per rank, GiB':<24}" + "".join(f"{k:>9}" for k in KINDS))
        rows = [(f"rank {i}, counted", g["state"]) for i, g in enumerate(got)]
        rows += [("memory_math, expected", want), ("DDP, every rank", ddp)]
        for name, b in rows:
            print(f"{name:<24}" + "".join(f"{b[k] / 2**30:9.2f}" for k in KINDS))
        print(f"largest difference: {100 * diff:.4f}%; every shard on meta: {all_meta}; "
              f"peak resident memory per process: {rss:.2f} GiB")
        print(json.dumps({
            "params": n, "world_size": world, "tied": all(g["tied"] for g in got),
            "on_meta": all_meta, "max_rel_diff": diff,
            "state_gib_per_rank": max(g["state"]["total"] for g in got) / 2**30,
            "expected_gib_per_rank": want["total"] / 2**30,
            "ddp_gib_per_rank": ddp["total"] / 2**30, "max_rss_gib": rss}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
