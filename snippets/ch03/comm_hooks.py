"""DDP communication hooks: one training run with plain, bf16 and PowerSGD all-reduces.

A hook replaces what DDP does with each gradient bucket. bf16_compress_hook sends the
bucket in bf16, half the bytes; powerSGD_hook sends a rank-r approximation of each
gradient matrix and keeps the error it made for the next step. DDP accepts
bf16_compress_hook only with NCCL, so on CPU (gloo) fp16_compress_hook takes its place;
PowerSGD runs on both. It trains the chapter's GPT from the same weights on the same
data with each hook and prints the bytes each step sends per rank, the final loss and,
for PowerSGD, its own count of gradient elements before and after compression.

    torchrun --nproc-per-node 2 snippets/ch03/comm_hooks.py
"""

import argparse
import json
import os
import sys

import torch
import torch.distributed as dist
from data import BigramTokens
from gpt import PRESETS, build
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
from torch.nn.parallel import DistributedDataParallel as DDP


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--preset", choices=list(PRESETS), default="tiny")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per rank and step")
    ap.add_argument("--rank-r", type=int, default=4, help="PowerSGD's matrix approximation rank")
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if min(args.steps, args.micro_batch, args.rank_r) <= 0 or args.steps < 3:
        sys.exit("error: --steps (at least 3), --micro-batch and --rank-r must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    return args


def train(hook, args, device, rank, world):
    torch.manual_seed(0)  # the same initial weights for every hook
    with device:
        model = build(args.preset)
    cfg = model.cfg
    # An explicit cap sizes the first bucket like the rest (see DDP's bucket rules), so the
    # tiny model's gradients form one bucket. PowerSGD on gloo needs that: with this model's
    # two default buckets, gloo aborts on a collective mismatch once PowerSGD starts.
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
              bucket_cap_mb=25)
    state = None
    if hook == "bf16":
        ddp.register_comm_hook(None, default_hooks.bf16_compress_hook)
    elif hook == "fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif hook == "powersgd":
        # PowerSGD starts after DDP's first two iterations; before that it all-reduces plainly.
        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=args.rank_r,
                                       start_powerSGD_iter=2)
        ddp.register_comm_hook(state, powersgd.powerSGD_hook)
    opt = torch.optim.AdamW(ddp.parameters(), lr=args.lr)
    data = BigramTokens(cfg.vocab_size, cfg.seq_len, num_samples=512, seed=0)
    for step in range(args.steps):
        first = (step * world + rank) * args.micro_batch
        batch = [data[(first + i) % len(data)] for i in range(args.micro_batch)]
        x, y = (torch.stack(t).to(device) for t in zip(*batch, strict=True))
        loss = ddp(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss = loss.detach()
    dist.all_reduce(loss)
    n = sum(p.numel() for p in ddp.parameters())
    # Bytes one rank's gradients take on the wire per step: fp32, or half that compressed.
    sent = {"allreduce": 4 * n, "bf16": 2 * n, "fp16": 2 * n}.get(hook)
    result = {"final_loss": loss.item() / world, "bucket_bytes": sent}
    if state is not None:
        rate, before, after = state.compression_stats()
        result.update(compression_rate=rate, elements_before=before, elements_after=after)
    del ddp, opt
    return result


def main():
    args = parse_args()
    cuda = args.device == "cuda"
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    # DDP refuses bf16_compress_hook without NCCL; on gloo, fp16 compression stands in.
    hooks = ("allreduce", "bf16" if cuda else "fp16", "powersgd")
    for hook in hooks:
        results[hook] = train(hook, args, device, rank, world)
        if rank == 0:
            extra = ""
            if "compression_rate" in results[hook]:
                extra = (f"; sent {results[hook]['elements_after']:,} of "
                         f"{results[hook]['elements_before']:,} gradient elements "
                         f"({results[hook]['compression_rate']:.1f}x less) once compressing")
            sent = results[hook]["bucket_bytes"]
            sent = f", {sent:,} bytes of gradients per step" if sent else ""
            print(f"{hook:<10} final loss {results[hook]['final_loss']:.4f}{sent}{extra}",
                  flush=True)
    if rank == 0:
        print(json.dumps({"world_size": world, "steps": args.steps, "rank_r": args.rank_r,
                          **results}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
