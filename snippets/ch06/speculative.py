"""Speculative decoding with the book's draft and target models (greedy), timed.

    python snippets/ch06/speculative.py --target runs/ch06/model --draft runs/ch06/draft --k 4

The draft proposes k tokens one at a time; the target checks all of them in one pass and
keeps the longest prefix it agrees with, plus one token of its own. With greedy sampling
the output is the target's own output, only sooner (or later, if the draft guesses badly).
"""

import argparse
import json
import random
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from engine import Engine, generate, load


# --8<-- [start:speculate]
def speculative(target: Engine, draft: Engine, prompt: list[int], n: int, k: int):
    seq = list(prompt)
    target.step([(0, seq[:-1], 0)])  # both caches hold every token but the last
    draft.step([(0, seq[:-1], 0)])
    dlen, accepted, passes = len(seq) - 1, 0, 0
    while len(seq) - len(prompt) < n:
        guess = [draft.step([(0, seq[dlen:], dlen)])[0][-1]]  # k cheap steps of the draft
        for _ in range(k - 1):
            guess.append(draft.step([(0, guess[-1:], len(seq) + len(guess) - 1)])[0][-1])
        check = target.step([(0, seq[-1:] + guess, len(seq) - 1)])[0]  # one target pass
        m = 0
        while m < k and guess[m] == check[m]:
            m += 1
        # Keep the agreed prefix and the target's own next token; later cache entries are
        # simply overwritten, which is how a rejected guess is rolled back.
        old = len(seq)
        seq += guess[:m] + [check[m]]
        dlen, accepted, passes = old + min(m, k - 1), accepted + m, passes + 1
    made = len(seq) - len(prompt)
    return seq[len(prompt) : len(prompt) + n], accepted / (k * passes), made / passes
# --8<-- [end:speculate]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="runs/ch06/model")
    ap.add_argument("--draft", default="runs/ch06/draft")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--k", type=int, default=4, help="tokens the draft proposes per round")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per prompt")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.k < 1 or a.prompts < 1 or a.tokens < 1 or a.repeats < 1:
        sys.exit("error: --k, --prompts, --tokens and --repeats must be positive")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.target)
    tm, dm = load(a.target, a.device), load(a.draft, a.device)
    if tm.config.vocab_size != dm.config.vocab_size:
        sys.exit(f"error: the draft's vocabulary ({dm.config.vocab_size}) is not the target's "
                 f"({tm.config.vocab_size}): train it with --tokenizer {a.target}")
    size = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    print(f"target {size(tm):.1f}M parameters, draft {size(dm):.1f}M, k = {a.k}")
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    texts = [p.read_text(errors="replace") for p in random.Random(1).sample(files, a.prompts)]
    prompts = [tok(t)["input_ids"][:48] for t in texts]
    length = 48 + a.tokens + a.k + 2
    target, draft = Engine(tm, 1, length), Engine(dm, 1, length)
    runs = []
    for rep in range(a.repeats):
        t0 = time.perf_counter()
        plain = [generate(target, p, a.tokens) for p in prompts]
        t1 = time.perf_counter()
        spec = [speculative(target, draft, p, a.tokens, a.k) for p in prompts]
        t2 = time.perf_counter()
        same = sum(x == y[0] for x, y in zip(plain, spec, strict=True))
        runs.append({"speedup": (t1 - t0) / (t2 - t1),
                     "acceptance_rate": statistics.mean(s[1] for s in spec),
                     "tokens_per_pass": statistics.mean(s[2] for s in spec),
                     "plain_tokens_per_s": a.prompts * a.tokens / (t1 - t0),
                     "spec_tokens_per_s": a.prompts * a.tokens / (t2 - t1), "same": same})
        r = runs[-1]
        print(f"repeat {rep + 1}: target alone {r['plain_tokens_per_s']:.0f} tokens/s, with the "
              f"draft {r['spec_tokens_per_s']:.0f} tokens/s ({r['speedup']:.2f}x); "
              f"{r['acceptance_rate']:.0%} of guesses accepted, {r['tokens_per_pass']:.2f} "
              f"tokens per target pass; {same}/{a.prompts} outputs identical", flush=True)
    print("sample:", repr(tok.decode(prompts[0][-12:])), "->", repr(tok.decode(plain[0][:24])))
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    out |= {"speedup_min": round(min(r["speedup"] for r in runs), 3),
            "speedup_max": round(max(r["speedup"] for r in runs), 3), "k": a.k,
            "all_identical": int(all(r["same"] == a.prompts for r in runs))}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
