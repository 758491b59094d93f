"""A multi-turn chat trace, and how much of it a prefix cache can reuse.

Every conversation starts with the same system prompt; each turn sends the whole
history so far (system prompt, earlier user messages and replies) plus a new user
message. Token ids stand in for text: a prefix cache compares ids, never text. The
trace is written as JSON lines in the order the requests are sent, turn by turn
across conversations, and replayed here through the radix cache at two page sizes.

    python snippets/ch07/chat_trace.py --out runs/ch07/chat.jsonl
    python snippets/ch07/chat_trace.py --conversations 128 --turns 5 --system-len 1024 \
        --user-len 64 256 --reply-len 64 256 --repeats 3 --out runs/ch07/chat-gpu.jsonl
"""

import argparse
import json
import random
import sys
from pathlib import Path

from radix_cache import RadixCache


# --8<-- [start:trace]
def make_trace(args, repeat):
    rng = random.Random(args.seed * 1000 + repeat)  # each repeat: new prompts, same shape
    draw = lambda n: [rng.randrange(args.first_id, args.vocab) for _ in range(n)]  # noqa: E731
    systems = [draw(args.system_len) for _ in range(args.system_prompts)]
    histories = [list(systems[c % args.system_prompts]) for c in range(args.conversations)]
    trace = []
    for turn in range(args.turns):
        for c, history in enumerate(histories):
            history += draw(rng.randint(*args.user_len))
            trace.append({"repeat": repeat, "conversation": c, "turn": turn,
                          "prompt_token_ids": list(history)})
            # The application appends the assistant's reply before the next turn. Here it is
            # scripted, so the trace does not depend on what a server generates.
            history += draw(rng.randint(*args.reply_len))
    return trace
# --8<-- [end:trace]


# --8<-- [start:replay]
def replay(trace, page_size=1, capacity=None):
    """Prompt tokens reused over prompt tokens sent, as an engine counts them."""
    cache = RadixCache(capacity=capacity, page_size=page_size)
    hits = queries = 0
    for req in trace:
        tokens = req["prompt_token_ids"]
        # The last prompt token is always computed: its logits give the first output token.
        hits += cache.match(tokens[:-1])
        queries += len(tokens)
        cache.insert(tokens)
    return {"hits": hits, "queries": queries, "hit_rate": hits / queries}
# --8<-- [end:replay]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=8)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--system-prompts", type=int, default=1, help="distinct system prompts")
    ap.add_argument("--system-len", type=int, default=64)
    ap.add_argument("--user-len", type=int, nargs=2, default=[8, 24], metavar=("MIN", "MAX"))
    ap.add_argument("--reply-len", type=int, nargs=2, default=[8, 24], metavar=("MIN", "MAX"))
    ap.add_argument("--repeats", type=int, default=1, help="independent traces in one file")
    ap.add_argument("--vocab", type=int, default=8192, help="the model's vocabulary size")
    ap.add_argument("--first-id", type=int, default=256, help="lowest id used (skips specials)")
    ap.add_argument("--block-sizes", type=int, nargs="+", default=[16, 128],
                    help="KV block sizes to compare (vLLM: 16 on GPUs, 128 on CPUs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/ch07/chat.jsonl")
    args = ap.parse_args()
    for name in ("conversations", "turns", "system_prompts", "repeats"):
        if getattr(args, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 1")
    if min(args.block_sizes) < 1:
        sys.exit("error: --block-sizes must be at least 1")
    if not 0 <= args.first_id < args.vocab:
        sys.exit(f"error: --first-id {args.first_id} must lie in [0, --vocab {args.vocab})")
    for name in ("user_len", "reply_len"):
        lo, hi = getattr(args, name)
        if not 1 <= lo <= hi:
            sys.exit(f"error: --{name.replace('_', '-')} {lo} {hi} needs 1 <= MIN <= MAX")

    trace = [r for rep in range(args.repeats) for r in make_trace(args, rep)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in trace))
    lengths = [len(r["prompt_token_ids"]) for r in trace]
    print(f"{out}: {len(trace)} requests ({args.repeats} x {args.conversations} conversations x "
          f"{args.turns} turns), prompts of {min(lengths)} to {max(lengths)} tokens, "
          f"{sum(lengths)} in all")
    summary = {"requests": len(trace), "prompt_tokens": sum(lengths),
               "max_prompt_len": max(lengths)}
    for page in [1, *args.block_sizes]:
        r = replay(trace, page_size=page)
        name = "token-level" if page == 1 else f"{page}-token blocks"
        print(f"radix cache, {name:18} {r['hits']:7d} of {r['queries']} prompt tokens reused "
              f"({r['hit_rate']:.1%})")
        key = "token" if page == 1 else f"block{page}"
        summary |= {f"{key}_hits": r["hits"], f"{key}_hit_rate": round(r["hit_rate"], 4)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
