"""The KV cache a disaggregated request moves: the arithmetic, and what NIXL reports moving.

Arithmetic: bytes per token for one of chapter 6's model shapes (K and V, every layer,
every KV head, bf16), times the prompt lengths asked for. Measurement: prompt tokens per
request from the prefill server's counters, bytes and time per transfer from the NIXL
histograms (the decode server, which reads the blocks, records them), set against the
same arithmetic from the served model's config.

    python snippets/ch07/kv_transfer.py --shape book_1b --prompt-tokens 256 3072
    python snippets/ch07/kv_transfer.py --model runs/ch07/model-1b \
        --prefill http://127.0.0.1:8201 --decode http://127.0.0.1:8202
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch06"))
from kv_sizing import MODELS  # noqa: E402  chapter 6's model shapes
from prefix_hits import scrape  # noqa: E402


# --8<-- [start:bytes]
def kv_bytes_per_token(layers, kv_heads, head_dim, dtype_bytes=2):
    return 2 * layers * kv_heads * head_dim * dtype_bytes  # K and V, every layer and KV head


def from_config(cfg):
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    return kv_bytes_per_token(cfg["num_hidden_layers"], kv_heads, head_dim)
# --8<-- [end:bytes]


def total(samples, name):
    return sum(v for _, v in samples.get(name, []))


def measure(args):
    cfg_path = Path(args.model) / "config.json"
    if not cfg_path.exists():
        sys.exit(f"error: {args.model} has no config.json")
    per_token = from_config(json.loads(cfg_path.read_text()))
    pre, dec = scrape(args.prefill), scrape(args.decode)
    nixl = lambda name: total(pre, name) + total(dec, name)  # noqa: E731  whichever side reads
    requests = total(pre, "vllm:request_success_total")
    transfers = nixl("vllm:nixl_bytes_transferred_count")
    if not requests or not transfers:
        sys.exit(f"error: no disaggregated requests yet ({requests:.0f} prefilled, "
                 f"{transfers:.0f} transfers): send some through the proxy first")
    tokens = total(pre, "vllm:prompt_tokens_total") / requests
    expected = tokens * per_token
    moved = nixl("vllm:nixl_bytes_transferred_sum") / transfers
    seconds = nixl("vllm:nixl_xfer_time_seconds_sum") / transfers
    print(f"KV cache per token: {per_token:,} bytes; {tokens:,.0f} prompt tokens per request")
    print(f"arithmetic: {expected / 1e6:.1f} MB per request; NIXL moved {moved / 1e6:.1f} MB "
          f"per transfer in {seconds * 1e3:.2f} ms ({moved / seconds / 1e9:.1f} GB/s), "
          f"{transfers:.0f} transfers for {requests:.0f} requests")
    return {"kv_bytes_per_token": per_token, "prompt_tokens_per_request": round(tokens),
            "expected_mb_per_request": round(expected / 1e6, 3),
            "moved_mb_per_transfer": round(moved / 1e6, 3),
            "moved_over_expected": round(moved / expected, 3),
            "transfer_ms": round(seconds * 1e3, 3),
            "transfer_gbps": round(moved / seconds / 1e9, 2),
            "transfers": transfers, "requests": requests}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(MODELS), default="book_1b")
    ap.add_argument("--prompt-tokens", type=int, nargs="+", default=[256, 3072])
    ap.add_argument("--link-gbps", type=float, default=50.0,
                    help="a link to price it on (50: one 400 Gb/s InfiniBand port, each way)")
    ap.add_argument("--model", help="measure: the served model's folder")
    ap.add_argument("--prefill", help="measure: URL of the prefill server")
    ap.add_argument("--decode", help="measure: URL of the decode server")
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    if any(n < 1 for n in args.prompt_tokens) or args.link_gbps <= 0:
        sys.exit("error: --prompt-tokens and --link-gbps must be positive")
    if args.prefill or args.decode or args.model:
        if not (args.prefill and args.decode and args.model):
            sys.exit("error: measuring needs --model, --prefill and --decode")
        summary = measure(args)
    else:
        layers, _, kv_heads, head_dim = MODELS[args.shape][:4]
        per_token = kv_bytes_per_token(layers, kv_heads, head_dim)
        print(f"{args.shape}: {layers} layers x {kv_heads} KV heads x {head_dim} x 2 (K, V) "
              f"x 2 bytes = {per_token:,} bytes of KV cache per token")
        summary = {"shape": args.shape, "kv_bytes_per_token": per_token,
                   "link_gbps": args.link_gbps}
        for n in args.prompt_tokens:
            mb = per_token * n / 1e6
            print(f"a {n:,}-token prompt moves {mb:.1f} MB: {mb / args.link_gbps:.2f} ms "
                  f"at {args.link_gbps:g} GB/s")
            summary |= {f"mb_{n}": round(mb, 3), f"ms_{n}": round(mb / args.link_gbps, 3)}
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
