"""A multi-turn chat trace, and how much of it a prefix cache can reuse.

Every conversation starts with the same system prompt; each turn sends the whole
history so far (system prompt, earlier user messages and replies) plus a new user
message. Token ids stand in for text: a prefix cache compares ids, never text. The
trace is written as JSON lines in the order the requests are sent, turn by turn
across conversations, and replayed here through the radix cache at two page sizes.

    python snippets/ch07/chat_trace.py --out runs/ch07/chat.jsonl
    python snippets/ch07/chat_trace.py --conversations 128 --turns 5 --system-len 1024 \
        --user-len 64 256 --reply-len 64 256 --max-tokens 128 --out runs/ch07/chat-gpu.jsonl
"""

import argparse
import json
import random
import sys
from pathlib import Path

from radix_cache import RadixCache


def make_trace(args):
    rng = random.Random(args.seed)
    draw = lambda n: [rng.randrange(args.first_id, args.vocab) for _ in range(n)]
    systems = [draw(args.system_len) for _ in range(args.system_prompts)]
    histories = [list(systems[c % args.system_prompts]) for c in range(args.conversations)]
    trace = []
    for turn in range(args.turns):
        for c, history in enumerate(histories):
            history += draw(rng.randint(*args.user_len))
            trace.append({"conversation": c, "turn": turn, "prompt_token_ids": list(history),
                          "max_tokens": args.max_tokens})
            # The application appends the assistant's reply before the next turn. Here it is
            # scripted, so the trace does not depend on what a server generates.
            history += draw(rng.randint(*args.reply_len))
    return trace


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
    ap.add_argument("--system-len", type=int, default=200)
    ap.add_argument("--user-len", type=int, nargs=2, default=[20, 60], metavar=("MIN", "MAX"))
    ap.add_argument("--reply-len", type=int, nargs=2, default=[20, 60], metavar=("MIN", "MAX"))
    ap.add_argument("--max-tokens", type=int, default=8, help="tokens each request generates")
    ap.add_argument("--vocab", type=int, default=8192, help="the model's vocabulary size")
    ap.add_argument("--first-id", type=int, default=256, help="lowest id used (skips specials)")
    ap.add_argument("--block-size", type=int, default=16, help="the engine's KV block size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/ch07/chat.jsonl")
    args = ap.parse_args()
    for name in ("conversations", "turns", "system_prompts", "max_tokens", "block_size"):
        if getattr(args, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.first_id < args.vocab:
        sys.exit(f"error: --first-id {args.first_id} must lie in [0, --vocab {args.vocab})")
    for name in ("user_len", "reply_len"):
        lo, hi = getattr(args, name)
        if not 1 <= lo <= hi:
            sys.exit(f"error: --{name.replace('_', '-')} {lo} {hi} needs 1 <= MIN <= MAX")

    trace = make_trace(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in trace))
    lengths = [len(r["prompt_token_ids"]) for r in trace]
    print(f"{out}: {len(trace)} requests, {args.conversations} conversations x {args.turns} turns, "
          f"prompts of {min(lengths)} to {max(lengths)} tokens, {sum(lengths)} in all")
    token = replay(trace, page_size=1)
    block = replay(trace, page_size=args.block_size)
    print(f"radix cache, token-level matching:   {token['hits']:7d} of {token['queries']} "
          f"prompt tokens reused ({token['hit_rate']:.1%})")
    print(f"radix cache, {args.block_size}-token blocks:        {block['hits']:7d} of "
          f"{block['queries']} prompt tokens reused ({block['hit_rate']:.1%})")
    print(json.dumps({"requests": len(trace), "prompt_tokens": sum(lengths),
                      "max_prompt_len": max(lengths), "block_size": args.block_size,
                      "token_hits": token["hits"], "token_hit_rate": round(token["hit_rate"], 4),
                      "block_hits": block["hits"], "block_hit_rate": round(block["hit_rate"], 4),
                      "tokens_lost_to_blocks": token["hits"] - block["hits"]}))


if __name__ == "__main__":
    main()
