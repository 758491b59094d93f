"""What DDP moves and stores for one of the chapter's GPT presets: the arithmetic only.

Gradients are fp32, like the parameters (autocast changes the arithmetic, not them). The
buckets follow DDP's rule after its first iteration: parameters in the reverse of their
order in the model, a new bucket whenever the next gradient would overflow the cap.
Times divide bytes by a bus bandwidth you give; compute divides FLOPs by an MFU. Under
gradient accumulation only the last micro-batch's backward pass (two thirds of its FLOPs)
runs outside no_sync(), so that is the window the all-reduce can hide behind.

    python snippets/ch03/ddp_math.py --preset 1b
"""

import argparse
import json
import sys

import torch
from gpt import PRESETS, build


def buckets(sizes, cap):
    """The bytes of each bucket DDP fills with gradients of these byte sizes: last parameter
    first, and a bucket closes as soon as it holds at least `cap` bytes."""
    out, filled = [], 0
    for size in reversed(sizes):
        filled += size
        if filled >= cap:
            out, filled = out + [filled], 0
    return out + [filled] * (filled > 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="1b")
    ap.add_argument("--gpus", type=int, default=16, help="ranks of a multi-node job")
    ap.add_argument("--busbw-gbps", type=float, default=360, help="bus bandwidth in a node")
    ap.add_argument("--net-gbps", type=float, default=48,
                    help="bus bandwidth between nodes: one 400 Gb/s card per node, as in Chapter 2")
    ap.add_argument("--tokens-per-gpu", type=int, default=65536, help="per optimizer step")
    ap.add_argument("--micro-tokens", type=int, default=16384,
                    help="per micro-batch: 8 sequences of 2,048")
    ap.add_argument("--mfu", type=float, default=0.5)
    ap.add_argument("--peak-tflops", type=float, default=989, help="dense bf16, H100/H200 SXM")
    ap.add_argument("--train-tokens", type=float, default=20e9, help="about 20 per parameter")
    args = ap.parse_args()
    if min(args.gpus, args.busbw_gbps, args.net_gbps, args.tokens_per_gpu, args.micro_tokens,
           args.peak_tflops, args.train_tokens) <= 0:
        sys.exit("error: --gpus, --busbw-gbps, --net-gbps, --tokens-per-gpu, --micro-tokens and "
                 "--peak-tflops must be positive")
    if args.micro_tokens > args.tokens_per_gpu:
        sys.exit("error: --micro-tokens must not exceed --tokens-per-gpu")
    if not 0 < args.mfu <= 1:
        sys.exit(f"error: --mfu must be in (0, 1], got {args.mfu}")
    with torch.device("meta"):  # shapes only
        model = build(args.preset)
    n = model.num_params()
    sizes = [p.numel() * 4 for p in model.parameters()]  # fp32 gradients, in model order
    block = sum(p.numel() * 4 for p in model.blocks[0].parameters())
    # The block's weight matrices by their module's name: qkv, proj, up, down.
    matrices = {name.split(".")[-2]: p.numel() * 4 / 2**20
                for name, p in model.blocks[0].named_parameters() if p.ndim == 2}
    emb = model.tok_emb.weight.numel() * 4
    grad = 4 * n
    compute_s = args.tokens_per_gpu * model.flops_per_token() / (args.mfu * args.peak_tflops
                                                                 * 1e12)
    ring = 2 * (args.gpus - 1) / args.gpus
    filled = {cap: buckets(sizes, cap * 2**20) for cap in (25, 64, 256)}
    result = {
        "preset": args.preset, "params": n, "grad_gb": grad / 1e9,
        "gflop_per_token": model.flops_per_token() / 1e9,
        "tokens_per_s_per_gpu": args.tokens_per_gpu / compute_s,
        "days_1gpu": args.train_tokens * compute_s / args.tokens_per_gpu / 86400,
        "hours_on_gpus": args.train_tokens * compute_s / args.tokens_per_gpu / args.gpus / 3600,
        "block_grad_mib": block / 2**20, "block_matrix_mib": matrices,
        "embedding_grad_mib": emb / 2**20,
        "buckets": {str(cap): len(b) for cap, b in filled.items()},
        # Each bucket's MiB in the order DDP reduces them (Figure 3.1 draws them).
        "bucket_mib": {str(cap): [x / 2**20 for x in b] for cap, b in filled.items()},
        # The bucket reduced last holds the first parameters, the tied embedding among them:
        # nothing is left to hide its all-reduce behind.
        "last_bucket_mib": {str(cap): b[-1] / 2**20 for cap, b in filled.items()},
        "state_gb": 16 * n / 1e9, "state_gib": 16 * n / 2**30, "checkpoint_gb": 12 * n / 1e9,
        "adamw_traffic_gb": 28 * n / 1e9,  # reads p, g, m, v (16 B), writes p, m, v (12 B)
        "busbw_gbps": args.busbw_gbps, "net_gbps": args.net_gbps,
        "allreduce_ms_2gpu": grad / (args.busbw_gbps * 1e9) * 1e3,
        "compute_s": compute_s,
        "overlap_window_s": compute_s * args.micro_tokens / args.tokens_per_gpu * 2 / 3,
        "nodes_sent_gb": ring * grad / 1e9,
        "nodes_allreduce_s": ring * grad / (args.net_gbps * 1e9),
        "nodes_last_bucket_ms": ring * filled[256][-1] / (args.net_gbps * 1e9) * 1e3,
    }
    print(f"{args.preset}: {n / 1e6:.1f}M parameters, {result['grad_gb']:.2f} GB of fp32 gradients "
          f"({result['block_grad_mib']:.0f} MiB per block, {result['embedding_grad_mib']:.0f} MiB "
          "for the tied embedding)")
    print("one block's matrices: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in matrices.items()))
    print(f"{result['gflop_per_token']:.2f} GFLOP per token; at {args.mfu:.0%} MFU "
          f"{result['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU, "
          f"{args.train_tokens / 1e9:g}B tokens in {result['days_1gpu']:.1f} days on one GPU, "
          f"{result['hours_on_gpus']:.1f} hours on {args.gpus}")
    print("buckets per step: " + ", ".join(f"{b} at {c} MiB" for c, b in result["buckets"].items())
          + "; the last, with the embedding: " + ", ".join(
              f"{m:.0f} MiB" for m in result["last_bucket_mib"].values()))
    print(f"state {result['state_gb']:.1f} GB, checkpoint {result['checkpoint_gb']:.1f} GB, "
          f"AdamW step reads and writes {result['adamw_traffic_gb']:.1f} GB")
    print(f"all-reduce on 2 GPUs at {args.busbw_gbps:g} GB/s: "
          f"{result['allreduce_ms_2gpu']:.0f} ms; compute for {args.tokens_per_gpu:,} tokens at "
          f"{args.mfu:.0%} MFU: {compute_s:.2f} s, of which the last micro-batch's backward: "
          f"{result['overlap_window_s']:.2f} s")
    print(f"{args.gpus} GPUs at {args.net_gbps:g} GB/s: {result['nodes_sent_gb']:.1f} GB per GPU, "
          f"{result['nodes_allreduce_s']:.2f} s; the last bucket at 256 MiB "
          f"{result['nodes_last_bucket_ms']:.0f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
