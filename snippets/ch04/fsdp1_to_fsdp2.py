"""One sharding written twice: FSDP1 (FullyShardedDataParallel) and FSDP2 (fully_shard).

Both versions wrap chapter 3's GPT one block at a time, shard fully, gather in bf16
and reduce gradients in fp32. The script trains a few steps with each, from the
same weights and data, and checks that the losses agree:

    torchrun --nproc-per-node 2 snippets/ch04/fsdp1_to_fsdp2.py
    torchrun --nproc-per-node 2 snippets/ch04/fsdp1_to_fsdp2.py --device cuda

FSDP1                                          FSDP2
auto_wrap_policy=ModuleWrapPolicy({Block})     fully_shard(block) per block, then fully_shard(model)
ShardingStrategy.FULL_SHARD / SHARD_GRAD_OP    reshard_after_forward=True / False
ShardingStrategy.HYBRID_SHARD                  a 2-D mesh: mesh_dim_names=("replicate", "shard")
MixedPrecision(param_dtype, reduce_dtype)      MixedPrecisionPolicy(param_dtype, reduce_dtype)
CPUOffload(offload_params=True)                CPUOffloadPolicy()
backward_prefetch, forward_prefetch            set_modules_to_backward/forward_prefetch
FSDP.state_dict_type(...)                      get_state_dict / set_state_dict, then DCP
model.no_sync()                                model.set_requires_gradient_sync(False)
FlatParameter: a padded 1-D buffer per unit    one DTensor per parameter, sharded on dim 0
"""

import argparse
import gc
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import (
    MixedPrecision,
    MixedPrecisionPolicy,
    ShardingStrategy,
    fully_shard,
)
from torch.distributed.fsdp.wrap import ModuleWrapPolicy
from torch.distributed.tensor import DTensor

# Chapter 3's model and data, as in train_fsdp.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from data import BigramTokens  # noqa: E402
from gpt import Block, build  # noqa: E402


# --8<-- [start:fsdp1]
def wrap_fsdp1(model, device):
    return FSDP(
        model,
        auto_wrap_policy=ModuleWrapPolicy({Block}),  # one unit per Block; the root takes the rest
        sharding_strategy=ShardingStrategy.FULL_SHARD,  # reshard after forward
        mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32),
        device_id=device,
        use_orig_params=True,  # the optimizer sees the model's own parameters, not FlatParameters
    )
# --8<-- [end:fsdp1]


# --8<-- [start:fsdp2]
def wrap_fsdp2(model, mesh):
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.blocks:  # bottom-up: each Block first...
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=True)
    fully_shard(model, mesh=mesh, mp_policy=mp)  # ...then the root takes what is left
    return model  # the same object, its class now also FSDPModule
# --8<-- [end:fsdp2]


def local_elements(model):
    """Parameter elements this rank stores (FSDP1: slices of FlatParameters; FSDP2: shards)."""
    return sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in model.parameters())


def train(model, data, device, steps, batch):
    rank, world = dist.get_rank(), dist.get_world_size()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        first = (step * world + rank) * batch
        x, y = (torch.stack(t).to(device) for t in zip(*(data[first + i] for i in range(batch)),
                                                           strict=True))
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dist.all_reduce(loss := loss.detach())
        losses.append(loss.item() / world)
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4, help="sequences per rank per step")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    if args.device == "cuda" and int(os.environ["LOCAL_WORLD_SIZE"]) > torch.cuda.device_count():
        sys.exit(f"error: more processes per node than the {torch.cuda.device_count()} GPU(s)")
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh(device.type, (world,))
    data = BigramTokens(512, 128, seed=args.seed)

    results = {}
    for api in ("fsdp1", "fsdp2"):
        torch.manual_seed(args.seed)  # the same weights for both
        with device:
            model = build("tiny")
        n = model.num_params()
        model = wrap_fsdp1(model, device) if api == "fsdp1" else wrap_fsdp2(model, mesh)
        losses = train(model, data, device, args.steps, args.batch)
        held = local_elements(model)
        results[api] = {"losses": [round(v, 4) for v in losses], "local_params": held}
        if rank == 0:
            print(f"{api}: {type(model).__name__}, rank 0 holds {held:,} of {n:,} parameters; "
                  f"losses {' '.join(f'{v:.4f}' for v in losses)}", flush=True)
    diff = max(abs(a - b) for a, b in zip(results["fsdp1"]["losses"], results["fsdp2"]["losses"],
                                          strict=True))
    if rank == 0:
        print(json.dumps({"world_size": world, **results, "max_loss_diff": round(diff, 6),
                          "losses_agree": diff < 1e-2}), flush=True)
    del model, mesh  # free what holds the process groups before they go (see train_fsdp.py)
    gc.collect()
    dist.destroy_process_group()
    sys.exit(0 if diff < 1e-2 else 1)


if __name__ == "__main__":
    main()
