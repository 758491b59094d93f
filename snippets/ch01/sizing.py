"""Why one GPU is not enough: memory, compute, communication and money for Llama 2 7B and 70B.

Every number is arithmetic: parameters and FLOPs per token come from chapter 2's
calculator (snippets/ch02/aicluster), the GPU's peak, memory and bandwidth from its
table of datasheet figures, and the rest from the flags (the price of a GPU-hour above
all: it is an input, not a fact). Run it as it is, or with your own numbers:

    python snippets/ch01/sizing.py
    python snippets/ch01/sizing.py --gpu-hour-usd 2.50 --train-tokens 15e12 --mfu 0.35
"""

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch02"))
from aicluster.flops import params, training_flops  # noqa: E402
from aicluster.hardware import lookup  # noqa: E402
from aicluster.mfu import MODELS  # noqa: E402

NAMES = {"7b": "llama2-7b", "70b": "llama2-70b"}
# A100-80GB GPU-hours of each pre-training run: Touvron et al. 2023, arXiv:2307.09288, table 2.
REPORTED_A100_HOURS = {"7b": 184_320, "70b": 1_720_320}


# --8<-- [start:train]
def training(n, flops_per_token, args):
    state_bytes = 16 * n  # bf16 weights (2) and gradients (2), fp32 master (4), Adam (8)
    flops = flops_per_token * args.train_tokens
    gpu_hours = flops / (args.mfu * args.peak_tflops * 1e12) / 3600
# --8<-- [end:train]
    return {
        "state_gb": state_bytes / 1e9,
        "min_gpus_for_state": math.ceil(state_bytes / (args.gpu_mem_gb * 1e9)),
        "state_gb_per_gpu_sharded": state_bytes / args.shard_gpus / 1e9,
        "gflop_per_token": flops_per_token / 1e9, "six_n_gflop": 6 * n / 1e9,
        "train_flops": flops,
        "gpu_hours": gpu_hours, "gpu_years": gpu_hours / (24 * 365),
        "days_on_cluster": gpu_hours / args.cluster_gpus / 24,
        "train_cost_usd": gpu_hours * args.gpu_hour_usd,
    }


def data_parallel(n, flops_per_token, args):
    # Plain data parallelism over the cluster: each GPU computes on its share of the
    # global batch, then all of them exchange the full bf16 gradients. How long the
    # exchange takes depends on the network and on how the collective uses it.
    tokens = args.global_batch_tokens / args.cluster_gpus
    compute_s = tokens * flops_per_token / (args.mfu * args.peak_tflops * 1e12)
    return {"grad_gb": 2 * n / 1e9, "tokens_per_gpu_step": tokens, "compute_s": compute_s}


# --8<-- [start:serve]
def serving(n, m, args):
    weight_bytes = n * args.weight_bits / 8
    kv_per_token = 2 * m.layers * m.kv_heads * m.head_dim * 2  # K and V, bf16
    kv_bytes = args.batch * args.context * kv_per_token
    need = math.ceil((weight_bytes + kv_bytes) / (0.9 * args.gpu_mem_gb * 1e9))
    # Tensor parallelism splits the attention heads evenly, so round up to a divisor.
    gpus = next((tp for tp in range(need, m.heads + 1) if m.heads % tp == 0), need)
    # Decode is bound by memory bandwidth: a step reads every weight and every
    # sequence's KV cache once, and produces one token per sequence.
    step_s = (weight_bytes + kv_bytes) / (gpus * args.hbm_gbps * 1e9)
# --8<-- [end:serve]
    tokens_per_s = args.batch / step_s
    usable = 0.9 * args.gpu_mem_gb * 1e9  # 10% of each GPU is kept for the runtime
    return {
        "weights_gb": weight_bytes / 1e9,
        "weights_gb_by_bits": {b: n * b / 8 / 1e9 for b in (16, 8, 4)},
        "kv_mib_per_token": kv_per_token / 2**20, "kv_gib": kv_bytes / 2**30,
        "gpus_for_weights": math.ceil(weight_bytes / usable), "gpus_for_memory": need,
        "gpus": gpus, "flops_per_byte": 2 * args.batch / (args.weight_bits / 8),
        "step_ms": step_s * 1e3, "decode_tokens_per_s": tokens_per_s,
        "useful_tflops_per_gpu": tokens_per_s * 2 * n / gpus / 1e12,
        "usd_per_million_tokens": gpus * args.gpu_hour_usd / (tokens_per_s * 3600) * 1e6,
    }


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default="h100", help="a GPU of chapter 2's table (h100, h200, ...)")
    ap.add_argument("--peak-tflops", type=float, help="override the table's dense bf16 peak")
    ap.add_argument("--gpu-mem-gb", type=float, help="override the table's HBM size")
    ap.add_argument("--hbm-gbps", type=float, help="override the table's HBM bandwidth")
    ap.add_argument("--gpu-hour-usd", type=float, default=3.00, help="your price per GPU-hour")
    ap.add_argument("--train-tokens", type=float, default=2e12, help="Llama 2 trained on 2T")
    ap.add_argument("--mfu", type=float, default=0.40, help="model FLOPs utilisation")
    ap.add_argument("--cluster-gpus", type=int, default=1024)
    ap.add_argument("--shard-gpus", type=int, default=64, help="GPUs the state is sharded over")
    ap.add_argument("--global-batch-tokens", type=float, default=4e6, help="tokens per step")
    ap.add_argument("--batch", type=int, default=32, help="sequences decoded together")
    ap.add_argument("--context", type=int, default=2048, help="tokens held per sequence")
    ap.add_argument("--weight-bits", type=int, default=16, choices=[16, 8, 4])
    ap.add_argument("--prompt-tokens", type=int, default=2000, help="one request's prompt")
    args = ap.parse_args()
    try:
        gpu = lookup(args.gpu)
    except ValueError as e:
        sys.exit(f"error: {e}")
    args.peak_tflops = args.peak_tflops or gpu.tflops["bf16"]
    args.gpu_mem_gb = args.gpu_mem_gb or gpu.hbm_gb
    args.hbm_gbps = args.hbm_gbps or gpu.hbm_gbps
    for name in ("peak_tflops", "gpu_mem_gb", "hbm_gbps", "gpu_hour_usd", "train_tokens",
                 "cluster_gpus", "shard_gpus", "global_batch_tokens", "batch",
                 "context", "prompt_tokens"):
        if getattr(args, name) <= 0:
            sys.exit(f"error: --{name.replace('_', '-')} must be positive")
    if not 0 < args.mfu <= 1:
        sys.exit(f"error: --mfu must be in (0, 1], got {args.mfu}")
    args.gpu_name = gpu.name
    return args


def main():
    args = parse_args()
    result = {"gpu": args.gpu_name, "ridge_flops_per_byte": args.peak_tflops * 1e12
              / (args.hbm_gbps * 1e9)}
    print(f"{args.gpu_name}: {args.peak_tflops:g} TFLOP/s bf16, {args.gpu_mem_gb:g} GB, "
          f"{args.hbm_gbps:g} GB/s; {args.mfu:.0%} MFU, ${args.gpu_hour_usd:.2f} per GPU-hour")
    print(f"{'':>4} {'params':>7} {'state':>7} {'GPUs':>5} {'GPU-years':>10} {'train $':>12} "
          f"{'weights':>8} {'KV':>7} {'GPUs':>5} {'tok/s':>6} {'$/M tok':>8}")
    for name, key in NAMES.items():
        m = MODELS[key]
        n = params(m)[0]
        flops_per_token = training_flops(m)[0]
        t, c, s = training(n, flops_per_token, args), data_parallel(n, flops_per_token, args), \
            serving(n, m, args)
        # One request alone: every decode step still reads all the weights and its own KV
        # cache, and its prefill does 2 FLOPs per parameter per prompt token, at best at peak.
        one = serving(n, m, argparse.Namespace(**{**vars(args), "batch": 1}))
        prefill_flops = 2 * n * args.prompt_tokens
        s["one_request"] = {"step_ms": one["step_ms"],
                            "decode_tokens_per_s": one["decode_tokens_per_s"],
                            "prefill_tflop": prefill_flops / 1e12,
                            "prefill_ms": prefill_flops / (one["gpus"] * args.peak_tflops * 1e12)
                            * 1e3}
        # The MFU that the GPU-hours the Llama 2 paper reports imply, at the A100's bf16 peak.
        reported = flops_per_token * 2e12 / (REPORTED_A100_HOURS[name] * 3600
                                       * lookup("a100").tflops["bf16"] * 1e12)
        result[name] = {"params": n, "train": t, "comm": c, "serve": s,
                        "reported_mfu": reported}
        print(f"{name:>4} {n / 1e9:6.2f}B {t['state_gb']:5.0f}GB {t['min_gpus_for_state']:5d} "
              f"{t['gpu_years']:10.1f} {t['train_cost_usd']:12,.0f} {s['weights_gb']:6.1f}GB "
              f"{s['kv_gib']:5.1f}Gi {s['gpus']:5d} {s['decode_tokens_per_s']:6.0f} "
              f"{s['usd_per_million_tokens']:8.2f}")
    print(f"Llama 2's reported A100-hours imply an MFU of {result['7b']['reported_mfu']:.0%} (7b) "
          f"and {result['70b']['reported_mfu']:.0%} (70b)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
