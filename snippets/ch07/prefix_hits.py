"""Set a server's own prefix-cache counters beside the radix cache's replay of the same trace.

Reads /metrics from a vLLM or SGLang server that has just served the trace (and
nothing else), and replays the trace through the book's radix cache at token level
and at the server's block size.

    python snippets/ch07/prefix_hits.py --trace runs/ch07/chat.jsonl --url http://127.0.0.1:8107
"""

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

from chat_trace import replay

# hits, queries: what each engine exports about its prefix cache
COUNTERS = {
    "vllm": ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"),
    "sglang": ("sglang:cached_tokens_total", "sglang:prompt_tokens_total"),
}
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$")


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def scrape(url):
    """{name: [(labels, value), ...]} from a Prometheus text page."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
            text = r.read().decode()
    except OSError as e:
        fail(f"no metrics at {url}/metrics: {e}")
    samples = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            samples.setdefault(m[1], []).append((m[2] or "", float(m[3])))
    return samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="runs/ch07/chat.jsonl")
    ap.add_argument("--url", default="http://127.0.0.1:8107")
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    if not Path(args.trace).exists():
        fail(f"--trace {args.trace} does not exist; write it with chat_trace.py")
    trace = [json.loads(line) for line in Path(args.trace).read_text().splitlines()]
    samples = scrape(args.url)
    engine = next((e for e, (h, _) in COUNTERS.items() if h in samples), None)
    if engine is None:
        fail(f"{args.url}/metrics has no prefix-cache counters (for SGLang: --enable-metrics)")
    hits, queries = (sum(v for _, v in samples.get(n, [])) for n in COUNTERS[engine])
    block = 1
    for labels, _ in samples.get("vllm:cache_config_info", []):
        block = int(re.search(r'block_size="(\d+)"', labels)[1])
    token = replay(trace, page_size=1)
    paged = replay(trace, page_size=block)
    if queries == 0:
        fail(f"{args.url} has served no prompt tokens yet; send the trace first")

    # --8<-- [start:table]
    rows = [(f"{engine} server (its /metrics)", hits, queries),
            ("radix cache, token-level", token["hits"], token["queries"])]
    if block > 1:  # SGLang matches tokens; vLLM whole blocks
        rows.append((f"radix cache, {block}-token blocks", paged["hits"], paged["queries"]))
    for name, h, q in rows:
        print(f"{name:34} {h:8.0f} of {q:8.0f} prompt tokens reused ({h / q:.1%})")
    # --8<-- [end:table]
    summary = {"engine": engine, "block_size": block, "server_hits": hits,
               "server_queries": queries, "server_hit_rate": round(hits / queries, 4),
               "token_hits": token["hits"], "token_hit_rate": round(token["hit_rate"], 4),
               "block_hits": paged["hits"], "block_hit_rate": round(paged["hit_rate"], 4),
               "server_minus_block": hits - paged["hits"],
               "token_minus_server": token["hits"] - hits}
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
