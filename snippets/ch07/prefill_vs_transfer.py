"""What moving a prompt's KV cache costs next to the prefill that computed it.

Prefill: 2 FLOPs per parameter per prompt token (chapter 1's rule; attention's own
prompt-squared term is left out, so the real prefill is longer) at a given rate.
Transfer: the prompt's KV cache in bf16 over one link. Both are lower bounds on time,
so the transfer's share of the prefill printed here is the largest it can be.

    python snippets/ch07/prefill_vs_transfer.py --shapes book_1b llama31_70b --tflops 989
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch06"))
from kv_sizing import MODELS, params  # noqa: E402  chapter 6's model shapes
from kv_transfer import kv_bytes_per_token  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", choices=sorted(MODELS), default=["book_1b"])
    ap.add_argument("--prompt-tokens", type=int, default=3072)
    ap.add_argument("--tflops", type=float, default=989.0, help="prefill rate, TFLOP/s")
    ap.add_argument("--link-gbps", type=float, default=50.0, help="one link, GB/s each way")
    args = ap.parse_args()
    if args.prompt_tokens < 1 or args.tflops <= 0 or args.link_gbps <= 0:
        sys.exit("error: --prompt-tokens, --tflops and --link-gbps must be positive")
    summary = {"prompt_tokens": args.prompt_tokens, "tflops": args.tflops,
               "link_gbps": args.link_gbps}
    print(f"{args.prompt_tokens:,}-token prompt: prefill at {args.tflops:g} TFLOP/s, "
          f"KV cache (bf16) over {args.link_gbps:g} GB/s")
    print(f"{'shape':<12}{'params':>8}{'prefill TFLOP':>15}{'prefill ms':>12}"
          f"{'KV MB':>9}{'transfer ms':>13}{'transfer/prefill':>18}")
    for name in args.shapes:
        shape = MODELS[name]
        n = params(*shape)
        tflop = 2 * n * args.prompt_tokens / 1e12
        prefill_ms = tflop / args.tflops * 1e3
        mb = kv_bytes_per_token(shape[0], shape[2], shape[3]) * args.prompt_tokens / 1e6
        transfer_ms = mb / args.link_gbps
        print(f"{name:<12}{n / 1e9:>7.2f}B{tflop:>15,.1f}{prefill_ms:>12,.1f}"
              f"{mb:>9,.1f}{transfer_ms:>13.2f}{transfer_ms / prefill_ms:>18.0%}")
        summary[name] = {"params_b": round(n / 1e9, 3), "prefill_tflop": round(tflop, 2),
                         "prefill_ms": round(prefill_ms, 2), "kv_mb": round(mb, 1),
                         "transfer_ms": round(transfer_ms, 2),
                         "transfer_over_prefill": round(transfer_ms / prefill_ms, 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
