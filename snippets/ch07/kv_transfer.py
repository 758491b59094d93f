"""The KV cache a disaggregated request moves: the arithmetic, and what NIXL reports moving.

KV bytes per token come from the model's config (K and V, every layer, every KV head,
in the cache's dtype); prompt tokens per request from the prefill server's counters;
bytes and time per transfer from the decode server's NIXL histograms.

    python snippets/ch07/kv_transfer.py --model runs/ch07/model-1b \
        --prefill http://127.0.0.1:8201 --decode http://127.0.0.1:8202
"""

import argparse
import json
import sys
from pathlib import Path

from prefix_hits import scrape


def total(samples, name):
    return sum(v for _, v in samples.get(name, []))


# --8<-- [start:bytes]
def kv_bytes_per_token(cfg, dtype_bytes=2):
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    return 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * dtype_bytes  # K and V
# --8<-- [end:bytes]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch07/model-1b")
    ap.add_argument("--prefill", default="http://127.0.0.1:8201")
    ap.add_argument("--decode", default="http://127.0.0.1:8202")
    ap.add_argument("--dtype-bytes", type=int, default=2, help="2 for a bf16 KV cache")
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    cfg_path = Path(args.model) / "config.json"
    if not cfg_path.exists():
        sys.exit(f"error: {args.model} has no config.json")
    per_token = kv_bytes_per_token(json.loads(cfg_path.read_text()), args.dtype_bytes)
    pre, dec = scrape(args.prefill), scrape(args.decode)
    requests = total(pre, "vllm:request_success_total")
    prompt_tokens = total(pre, "vllm:prompt_tokens_total")
    transfers = total(dec, "vllm:nixl_bytes_transferred_count")
    if not requests or not transfers:
        sys.exit(f"error: no disaggregated requests yet ({requests:.0f} prefilled, "
                 f"{transfers:.0f} transfers): send some through the proxy first")
    tokens = prompt_tokens / requests
    expected = tokens * per_token
    moved = total(dec, "vllm:nixl_bytes_transferred_sum") / transfers
    seconds = total(dec, "vllm:nixl_xfer_time_seconds_sum") / transfers
    print(f"KV cache per token: {per_token:,} bytes; {tokens:,.0f} prompt tokens per request")
    print(f"arithmetic: {expected / 1e6:.1f} MB per request; NIXL moved {moved / 1e6:.1f} MB "
          f"per transfer in {seconds * 1e3:.2f} ms ({moved / seconds / 1e9:.1f} GB/s), "
          f"{transfers:.0f} transfers for {requests:.0f} requests")
    summary = {"kv_bytes_per_token": per_token, "prompt_tokens_per_request": round(tokens),
               "expected_mb_per_request": round(expected / 1e6, 3),
               "moved_mb_per_transfer": round(moved / 1e6, 3),
               "moved_over_expected": round(moved / expected, 3),
               "transfer_ms": round(seconds * 1e3, 3),
               "transfer_gbps": round(moved / seconds / 1e9, 2),
               "transfers": transfers, "requests": requests}
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
