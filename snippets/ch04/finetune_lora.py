"""Fine-tune with FSDP2 while most weights stay frozen: LoRA adapters and gradient clipping.

Every attention and MLP projection of chapter 3's GPT gets a LoRA adapter, a trainable
low-rank update B @ A beside the frozen weight. fully_shard then shards frozen and
trainable parameters alike: all of them are all-gathered for forward and backward, but
only the trainable ones get gradients, a reduce-scatter and AdamW state. Gradients are
DTensors, and clip_grad_norm_ returns the global norm over all ranks' shards.

    torchrun --nproc-per-node 2 snippets/ch04/finetune_lora.py
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from memory_math import state_bytes
from parallelize import make_mesh
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from data import BigramTokens  # noqa: E402
from gpt import PRESETS, build  # noqa: E402


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x, with W frozen and B starting at zero."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / r
        self.base.weight.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(r, base.in_features) / base.in_features**0.5)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.lora_a.t()) @ self.lora_b.t()


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--preset", choices=list(PRESETS), default="tiny")
    ap.add_argument("--rank-r", type=int, default=8, help="LoRA rank")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--max-norm", type=float, default=0.25, help="gradient clipping threshold")
    args = ap.parse_args()
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if min(args.rank_r, args.steps, args.micro_batch) <= 0 or args.max_norm <= 0:
        sys.exit("error: --rank-r, --steps, --micro-batch and --max-norm must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    return args


def main():
    args = parse_args()
    cuda = args.device == "cuda"
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(0)  # stands in for loading a pretrained model
    with device:
        model = build(args.preset)
        for p in model.parameters():
            p.requires_grad_(False)  # the base model is frozen
        for block in model.blocks:
            for parent, name in ((block.attn, "qkv"), (block.attn, "proj"), (block.mlp, "up"),
                                 (block.mlp, "down")):
                setattr(parent, name, LoRALinear(getattr(parent, name), args.rank_r, 16.0))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    mesh = make_mesh(device.type, world)
    for block in model.blocks:
        fully_shard(block, mesh=mesh)  # frozen and trainable parameters in one group
    fully_shard(model, mesh=mesh)
    # Only the trainable parameters go to the optimizer: no AdamW state for frozen weights.
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    if rank == 0:
        print(f"{total:,} parameters, {trainable:,} trainable ({trainable / total:.1%}), "
              f"LoRA rank {args.rank_r}, {world} ranks", flush=True)

    data = BigramTokens(model.cfg.vocab_size, model.cfg.seq_len, num_samples=512, seed=1)
    for step in range(args.steps):
        first = (step * world + rank) * args.micro_batch
        batch = [data[(first + i) % len(data)] for i in range(args.micro_batch)]
        x, y = (torch.stack(t).to(device) for t in zip(*batch, strict=True))
        loss = model(x, y)
        loss.backward()
        # The gradients are DTensor shards; the norm comes back as a DTensor whose value is
        # the norm over every rank's shard, the same number on every rank.
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_norm)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        opt.step()
        if step + 1 < args.steps:  # the last step's gradients stay, to be counted below
            opt.zero_grad(set_to_none=True)
        if rank == 0 and (step == 0 or (step + 1) % 10 == 0):
            print(f"step {step + 1:>3}/{args.steps}  loss {loss.item():.4f}  "
                  f"grad norm before clipping {norm.item():.3f}", flush=True)
    sizes = state_bytes(model, opt)
    frozen_grads = sum(p.grad is not None for p in model.parameters() if not p.requires_grad)
    if rank == 0:
        print(f"state per rank: params {sizes['params']:,} B, grads {sizes['grads']:,} B, "
              f"optimizer {sizes['optim']:,} B", flush=True)
        print(json.dumps({"world_size": world, "params": total, "trainable": trainable,
                          "final_loss": loss.item(), "grad_norm": norm.item(),
                          "frozen_with_grad": frozen_grads, **{f"state_{k}": v
                                                               for k, v in sizes.items()}}))
    del model, opt
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
