"""A chat trace replayed through a radix cache too small to hold it.

The cache keeps at most a given share of the tokens it would hold with no limit, and
evicts the least recently used leaves when it is full. Each capacity is replayed twice:
in the trace's own order, every conversation's turn in step with all the others, and
with the conversations taken a few at a time, as a scheduler or router that keeps
requests sharing a prefix together would present them.

    python snippets/ch07/cache_pressure.py --trace runs/ch07/chat.jsonl --shares 1 0.5 0.25
"""

import argparse
import json
import sys
from pathlib import Path

from chat_trace import replay
from radix_cache import RadixCache


def cached_tokens(trace, page_size):
    cache = RadixCache(page_size=page_size)
    for req in trace:
        cache.insert(req["prompt_token_ids"])
    return cache.size


def grouped(trace, group):
    """The same requests, `group` conversations at a time, turn by turn within a group."""
    key = lambda r: (r["repeat"], r["conversation"] // group, r["turn"], r["conversation"])  # noqa: E731
    return sorted(trace, key=key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="runs/ch07/chat.jsonl")
    ap.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.5, 0.25],
                    help="capacity as a share of what the trace would keep with no limit")
    ap.add_argument("--page-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--group", type=int, default=2, help="conversations taken together")
    args = ap.parse_args()
    if not Path(args.trace).exists():
        sys.exit(f"error: {args.trace} does not exist: write it with chat_trace.py first")
    if any(not 0 < s <= 1 for s in args.shares) or args.group < 1 or min(args.page_sizes) < 1:
        sys.exit("error: --shares must be in (0, 1]; --group and --page-sizes positive")
    trace = [json.loads(line) for line in Path(args.trace).read_text().splitlines()]
    orders = {"trace order": trace, f"{args.group} at a time": grouped(trace, args.group)}
    full = cached_tokens(trace, 1)
    print(f"{args.trace}: {len(trace)} requests; with no limit the cache keeps {full:,} tokens")
    pages = "".join(f"{f'page {p}':>10}" for p in args.page_sizes)
    print(f"{'capacity':>10} {'order':>14}" + pages)
    summary = {"requests": len(trace), "full_tokens": full}
    for share in args.shares:
        for name, reqs in orders.items():
            rates = [replay(reqs, p, round(full * share))["hit_rate"] for p in args.page_sizes]
            print(f"{share:>10.0%} {name:>14}" + "".join(f"{r:>10.1%}" for r in rates))
            tag = "trace" if name == "trace order" else "grouped"
            for p, r in zip(args.page_sizes, rates, strict=True):
                summary[f"{tag}_{share * 100:.0f}_p{p}"] = round(r, 4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
