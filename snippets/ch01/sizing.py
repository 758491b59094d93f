"""Why one GPU is not enough: memory, FLOPs and money for a 7B and a 70B model.

Every number is arithmetic on published model shapes and on GPU datasheet figures,
which the flags let you change (the price of a GPU-hour above all: it is an input,
not a fact). Run it as it is, or with your own numbers:

    python snippets/ch01/sizing.py
    python snippets/ch01/sizing.py --gpu-hour-usd 2.50 --train-tokens 15e12 --mfu 0.35
"""

import argparse
import json
import math
import sys

# Published shapes: Llama 2 (Touvron et al., 2023, table 1 and the released configs).
MODELS = {
    "7b": dict(layers=32, d=4096, ffn=11008, heads=32, kv_heads=32, vocab=32000),
    "70b": dict(layers=80, d=8192, ffn=28672, heads=64, kv_heads=8, vocab=32000),
}


def params(m):
    head_dim = m["d"] // m["heads"]
    attn = m["d"] * head_dim * (m["heads"] * 2 + m["kv_heads"] * 2)  # q, o full; k, v per KV head
    mlp = 3 * m["d"] * m["ffn"]  # gated MLP: gate, up and down projections
    return m["layers"] * (attn + mlp) + 2 * m["vocab"] * m["d"]  # untied embedding and head


# --8<-- [start:train]
def training(n, args):
    # Mixed precision with AdamW: bf16 weights (2) and gradients (2), fp32 master
    # weights (4) and two fp32 Adam moments (8): 16 bytes per parameter.
    state_bytes = 16 * n
    flops = 6 * n * args.train_tokens  # forward 2N + backward 4N per token
    gpu_seconds = flops / (args.mfu * args.peak_tflops * 1e12)
    gpu_hours = gpu_seconds / 3600
    return {
        "state_gb": state_bytes / 1e9,
        "min_gpus_for_state": math.ceil(state_bytes / (args.gpu_mem_gb * 1e9)),
        "train_flops": flops,
        "gpu_hours": gpu_hours,
        "days_on_cluster": gpu_hours / args.cluster_gpus / 24,
        "train_cost_usd": gpu_hours * args.gpu_hour_usd,
    }
# --8<-- [end:train]


# --8<-- [start:serve]
def serving(n, m, args):
    weight_bytes = 2 * n  # bf16
    head_dim = m["d"] // m["heads"]
    kv_per_token = 2 * m["layers"] * m["kv_heads"] * head_dim * 2  # K and V, bf16
    gpus = math.ceil(weight_bytes / (0.9 * args.gpu_mem_gb * 1e9))  # keep 10% for the runtime
    # Decoding is bound by memory bandwidth: each step reads every weight once and
    # each sequence's KV cache once, and produces one token per sequence.
    kv_bytes = args.batch * args.context * kv_per_token
    fits = weight_bytes + kv_bytes <= 0.9 * gpus * args.gpu_mem_gb * 1e9
    step_s = (weight_bytes + kv_bytes) / (gpus * args.hbm_gbps * 1e9)
    tokens_per_s = args.batch / step_s
    usd_per_m = gpus * args.gpu_hour_usd / (tokens_per_s * 3600) * 1e6
    return {
        "weights_gb": weight_bytes / 1e9,
        "kv_mib_per_token": kv_per_token / 2**20,
        "gpus_for_weights": gpus,
        "kv_fits": fits,
        "decode_tokens_per_s": tokens_per_s,
        "usd_per_million_tokens": usd_per_m,
    }
# --8<-- [end:serve]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peak-tflops", type=float, default=989, help="H100 SXM dense bf16")
    ap.add_argument("--gpu-mem-gb", type=float, default=80, help="H100 SXM HBM3")
    ap.add_argument("--hbm-gbps", type=float, default=3350, help="H100 SXM HBM3 bandwidth")
    ap.add_argument("--gpu-hour-usd", type=float, default=3.00, help="your price per GPU-hour")
    ap.add_argument("--train-tokens", type=float, default=2e12, help="Llama 2 trained on 2T")
    ap.add_argument("--mfu", type=float, default=0.40, help="model FLOPs utilisation")
    ap.add_argument("--cluster-gpus", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32, help="sequences decoded together")
    ap.add_argument("--context", type=int, default=2048, help="tokens held per sequence")
    args = ap.parse_args()
    for name in ("peak_tflops", "gpu_mem_gb", "hbm_gbps", "gpu_hour_usd", "train_tokens",
                 "cluster_gpus", "batch", "context"):
        if getattr(args, name) <= 0:
            sys.exit(f"error: --{name.replace('_', '-')} must be positive")
    if not 0 < args.mfu <= 1:
        sys.exit(f"error: --mfu must be in (0, 1], got {args.mfu}")

    result = {}
    print(f"{'model':>5} {'params':>8} {'train state':>12} {'GPUs':>5} {'GPU-hours':>10} "
          f"{'days':>6} {'train $':>12} {'weights':>8} {'KV/token':>9} {'tok/s':>7} {'$/M tok':>8}")
    for name, m in MODELS.items():
        n = params(m)
        t, s = training(n, args), serving(n, m, args)
        result[name] = {"params": n, "train": t, "serve": s}
        print(f"{name:>5} {n / 1e9:7.2f}B {t['state_gb']:10.0f}GB {t['min_gpus_for_state']:5d} "
              f"{t['gpu_hours']:10.3g} {t['days_on_cluster']:6.1f} {t['train_cost_usd']:12,.0f} "
              f"{s['weights_gb']:6.0f}GB {s['kv_mib_per_token']:7.2f}Mi "
              f"{s['decode_tokens_per_s']:7.0f} {s['usd_per_million_tokens']:8.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
