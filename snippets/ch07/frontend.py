"""A multi-call program in SGLang's frontend language, run against SGLang's own server.

Each program generates a summary of a module, forks into three branches that share
everything generated so far, joins their notes, and ends with a constrained choice.
The server sees many requests with long shared prefixes; its /metrics says how many
prompt tokens the radix cache served. Needs a server started with --enable-metrics.

    python snippets/ch07/frontend.py --url http://127.0.0.1:8300 --programs 64
"""

import argparse
import json
import sys
import time
from pathlib import Path

from prefix_hits import scrape

MODULES = ["pathlib", "asyncio", "json", "typing", "socket", "zipfile", "argparse", "heapq"]
ASPECTS = ["Edge case", "Test", "Fix"]


def totals(url):
    s = scrape(url)
    return (sum(v for _, v in s.get("sglang:cached_tokens_total", [])),
            sum(v for _, v in s.get("sglang:prompt_tokens_total", [])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8300")
    ap.add_argument("--programs", type=int, default=64)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    if args.programs < 1 or args.threads < 1:
        sys.exit("error: --programs and --threads must be at least 1")
    import sglang as sgl

    # --8<-- [start:program]
    @sgl.function
    def review(s, module):
        s += f"Module: {module}.py\nSummary:" + sgl.gen("summary", max_tokens=48, stop="\n")
        forks = s.fork(len(ASPECTS))  # three continuations of one shared prefix
        for f, aspect in zip(forks, ASPECTS, strict=True):
            f += f"\n{aspect}:" + sgl.gen("note", max_tokens=32, stop="\n")
        s += "\nNotes:" + " |".join(f["note"] for f in forks)
        s += "\nRisk: " + sgl.select("risk", choices=["low", "medium", "high"])
    # --8<-- [end:program]

    sgl.set_default_backend(sgl.RuntimeEndpoint(args.url))
    cached0, prompt0 = totals(args.url)
    start = time.time()
    states = review.run_batch([{"module": MODULES[i % len(MODULES)]} for i in range(args.programs)],
                              num_threads=args.threads, temperature=0, progress_bar=False)
    wall = time.time() - start
    cached, prompt = totals(args.url)
    cached, prompt = cached - cached0, prompt - prompt0
    risks = [st["risk"] for st in states]
    print(f"{args.programs} programs in {wall:.1f} s; first summary: {states[0]['summary'][:60]!r}")
    print("risk choices: " + ", ".join(f"{r} {risks.count(r)}" for r in ("low", "medium", "high")))
    print(f"prompt tokens {prompt:.0f}, served from the radix cache {cached:.0f} "
          f"({cached / max(prompt, 1):.1%})")
    summary = {"programs": args.programs, "wall_s": round(wall, 2),
               "programs_per_s": round(args.programs / wall, 2), "prompt_tokens": prompt,
               "cached_tokens": cached, "hit_rate": round(cached / max(prompt, 1), 4)}
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
