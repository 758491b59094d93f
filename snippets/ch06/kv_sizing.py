"""KV cache per token and per request, and how many requests fit, for real model shapes.

    python snippets/ch06/kv_sizing.py --context 8192 --gpu-gib 141

Bytes per token = 2 (keys and values) x layers x KV heads x head size x bytes per value,
the formula of chapter 1. The shapes are those of each model's published config.json.
"""

import argparse
import json
import sys

# --8<-- [start:shapes]
# name: layers, query heads, KV heads, head size, hidden, MLP width, vocabulary, tied head
MODELS = {
    "llama31_8b": (32, 32, 8, 128, 4096, 14336, 128256, False),   # Llama 3.1 8B
    "qwen25_7b": (28, 28, 4, 128, 3584, 18944, 152064, False),    # Qwen2.5 7B
    "llama31_70b": (80, 64, 8, 128, 8192, 28672, 128256, False),  # Llama 3.1 70B
    "book_gpu": (12, 12, 4, 64, 768, 3072, 16384, True),          # this chapter's GPU model
    "book_1b": (16, 32, 8, 64, 2048, 5632, 16384, True),          # its 1B sibling
}
# --8<-- [end:shapes]


def params(layers, heads, kv, hd, hidden, ff, vocab, tied) -> int:
    attn = hidden * heads * hd * 2 + hidden * kv * hd * 2  # q and o, k and v
    return layers * (attn + 3 * hidden * ff + 2 * hidden) + vocab * hidden * (1 if tied else 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=8192, help="tokens per request")
    ap.add_argument("--gpu-gib", type=float, default=141 * 1e9 / 2**30, help="memory per GPU "
                    "(default: an H200's 141 GB)")
    ap.add_argument("--utilization", type=float, default=0.9, help="the share vLLM may use "
                    "(its --gpu-memory-utilization)")
    ap.add_argument("--block", type=int, default=16, help="tokens per KV cache block")
    a = ap.parse_args()
    if a.context <= 0 or a.gpu_gib <= 0 or not 0 < a.utilization <= 1 or a.block <= 0:
        sys.exit("error: --context, --gpu-gib, --block must be positive; --utilization in (0, 1]")
    budget = a.gpu_gib * 2**30 * a.utilization
    out = {"context": a.context}
    print(f"{'model':>12} {'params':>8} {'KV/token':>10} {'KV/request':>11} {'block':>9} "
          f"{'requests that fit on one GPU':>34}")
    print(f"{'':>12} {'':>8} {'(bf16)':>10} {'(bf16)':>11} {'(bf16)':>9} "
          f"{'bf16 weights+KV':>17} {'FP8 weights+KV':>16}")
    for name, shape in MODELS.items():
        layers, _, kv, hd = shape[:4]
        n = params(*shape)
        per_token = 2 * layers * kv * hd * 2  # bytes, bf16
        per_req = per_token * a.context
        fit = {f"fits_{p}": max(0, int((budget - n * b) // (per_req * b / 2)))
               for p, b in (("bf16", 2), ("fp8", 1))}
        block = per_token * a.block / 1024
        out[name] = {"params_b": round(n / 1e9, 2), "kv_kib_per_token": per_token / 1024,
                     "kv_mib_per_request": per_req / 2**20, "block_kib": block,
                     "weights_gib_bf16": round(n * 2 / 2**30, 1), **fit}
        print(f"{name:>12} {n / 1e9:>7.2f}B {per_token / 1024:>7.0f} KiB "
              f"{per_req / 2**20:>7,.0f} MiB {block:>5.0f} KiB "
              f"{fit['fits_bf16']:>17,} {fit['fits_fp8']:>16,}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
