"""Decoding with and without a KV cache, timed as the sequence grows.

    python snippets/ch06/decode_kv.py --model runs/ch06/model --lengths 64,128,256,512

Without a cache every new token recomputes keys and values for the whole sequence; with
one, each step computes them for one token and reads the rest.
"""

import argparse
import json
import random
import statistics
import sys
import time

import torch
from engine import Engine, load


def ms_per_token(engine, seq: list[int], tokens: int, cached: bool, sync) -> tuple[float, list]:
    seq = list(seq)
    if cached:
        engine.step([(0, seq[:-1], 0)])  # prefill all but the last token, not timed
    start = time.perf_counter()
    for _ in range(tokens):
        if cached:  # one new token at its position; the history comes from the cache
            seq.append(engine.step([(0, [seq[-1]], len(seq) - 1)])[0][-1])
        else:  # the whole sequence, from position 0, every time
            seq.append(engine.step([(0, seq, 0)])[0][-1])
    sync()
    return (time.perf_counter() - start) / tokens * 1000, seq[-tokens:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch06/model")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--lengths", default="64,128,256,512", help="sequence lengths to time at")
    ap.add_argument("--tokens", type=int, default=8, help="decode steps timed per length")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    lengths = [int(x) for x in a.lengths.split(",")]
    if min(lengths) < 1 or a.tokens < 1 or a.repeats < 1:
        sys.exit("error: --lengths, --tokens and --repeats must be positive")
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    model = load(a.model, a.device)
    if max(lengths) + a.tokens + 1 > model.config.max_position_embeddings:
        sys.exit(f"error: --lengths up to {max(lengths)} exceed the model's "
                 f"{model.config.max_position_embeddings} positions")
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    engine = Engine(model, slots=1, max_len=max(lengths) + a.tokens + 1)
    rng = random.Random(0)
    out = {"lengths": lengths}
    print(f"{'length':>8} {'no cache (ms/token)':>20} {'KV cache (ms/token)':>20} {'ratio':>7}")
    for n in lengths:
        seq = [rng.randrange(10, model.config.vocab_size) for _ in range(n)]
        runs = []
        for _ in range(a.repeats):
            slow, t1 = ms_per_token(engine, seq, a.tokens, False, sync)
            fast, t2 = ms_per_token(engine, seq, a.tokens, True, sync)
            runs.append((slow, fast, t1 == t2))
        slow = statistics.median(r[0] for r in runs)
        fast = statistics.median(r[1] for r in runs)
        ratios = [r[0] / r[1] for r in runs]
        out[f"L{n}"] = {"uncached_ms": round(slow, 3), "cached_ms": round(fast, 3),
                        "ratio": round(statistics.median(ratios), 2),
                        "ratio_min": round(min(ratios), 2), "ratio_max": round(max(ratios), 2),
                        "same_tokens": int(all(r[2] for r in runs))}
        print(f"{n:>8} {slow:>20.2f} {fast:>20.2f} {slow / fast:>6.1f}x"
              f"{'' if out[f'L{n}']['same_tokens'] else '  (tokens differ)'}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
