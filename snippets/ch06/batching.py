"""Static against continuous batching: one request trace replayed through the same engine.

    python snippets/ch06/batching.py --model runs/ch06/model --requests 24 --rate 20

Requests arrive at random (Poisson) times with random prompt and output lengths. Static
batching starts a batch when it is full (or its oldest request has waited --max-wait),
and runs it until its longest request ends; finished rows keep computing, as padded rows
do. Continuous batching admits and retires requests at every step.
"""

import argparse
import json
import random
import statistics
import sys
import time

from engine import Engine, load


def trace(n: int, rate: float, vocab: int, seed: int) -> list[dict]:
    rng, t = random.Random(seed), 0.0
    reqs = []
    for i in range(n):
        t += rng.expovariate(rate)
        reqs.append({"id": i, "arrival": t, "out_len": rng.randint(8, 96),
                     "prompt": [rng.randrange(10, vocab) for _ in range(rng.randint(16, 96))]})
    return reqs


# --8<-- [start:schedulers]
def serve(engine: Engine, reqs: list[dict], policy: str, slots: int, max_wait: float) -> dict:
    waiting, running, free = list(reqs), {}, list(range(slots))
    first, finish, out_tokens, t0 = {}, {}, 0, time.perf_counter()
    while waiting or running:
        now = time.perf_counter() - t0
        arrived = [r for r in waiting if r["arrival"] <= now]
        admit = []
        if policy == "continuous":  # fill any free slot, at every step
            admit = arrived[: len(free)]
        elif not running and arrived and (len(arrived) >= slots or not waiting[len(arrived):]
                                          or now - arrived[0]["arrival"] >= max_wait):
            admit = arrived[:slots]  # static: a new batch only when the last one is done
        work = []
        for r in admit:
            waiting.remove(r)
            r["slot"], r["out"] = free.pop(0), []
            running[r["id"]] = r
            work.append((r["slot"], r["prompt"], 0))  # prefill: the whole prompt
        for r in running.values():
            if r not in admit:  # decode: one token (a finished static row computes a pad)
                work.append((r["slot"], [r["out"][-1]], len(r["prompt"]) + len(r["out"]) - 1))
        if not work:  # nothing to run until the next arrival
            time.sleep(max(0.0, min(r["arrival"] for r in waiting) - now))
            continue
        nxt = engine.step(work)
        now = time.perf_counter() - t0
        for (slot, _, _), toks in zip(work, nxt, strict=True):
            r = next(r for r in running.values() if r["slot"] == slot)
            if len(r["out"]) < r["out_len"]:
                r["out"].append(toks[-1])
                out_tokens += 1
                first.setdefault(r["id"], now)
                if len(r["out"]) == r["out_len"]:
                    finish[r["id"]] = now
        done = [r for r in running.values() if r["id"] in finish]
        if policy == "continuous" or len(done) == len(running):  # static: all or nothing
            for r in done:
                free.append(running.pop(r["id"])["slot"])
# --8<-- [end:schedulers]
    ttft = sorted(first[r["id"]] - r["arrival"] for r in reqs)
    span = max(finish.values()) - reqs[0]["arrival"]
    return {"output_tokens_per_s": out_tokens / span,
            "ttft_p50_ms": 1000 * statistics.median(ttft),
            "ttft_p90_ms": 1000 * ttft[int(0.9 * (len(ttft) - 1))],
            "e2e_mean_ms": 1000 * statistics.mean(finish[r["id"]] - r["arrival"] for r in reqs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch06/model")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--rate", type=float, default=20.0, help="arrivals per second")
    ap.add_argument("--slots", type=int, default=8, help="requests in a batch at most")
    ap.add_argument("--max-wait", type=float, default=0.5, help="static: seconds before a "
                    "partial batch starts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.requests < 1 or a.rate <= 0 or a.slots < 1 or a.repeats < 1:
        sys.exit("error: --requests, --rate, --slots and --repeats must be positive")
    model = load(a.model, a.device)
    engine = Engine(model, slots=a.slots, max_len=200)
    results = {"static": [], "continuous": []}
    for rep in range(a.repeats):  # the same trace for both policies, a new trace per repeat
        for policy in results:
            reqs = trace(a.requests, a.rate, model.config.vocab_size, a.seed + rep)
            results[policy].append(serve(engine, reqs, policy, a.slots, a.max_wait))
            s = results[policy][-1]
            print(f"repeat {rep + 1} {policy:>10}: {s['output_tokens_per_s']:7.1f} tokens/s, "
                  f"TTFT p50 {s['ttft_p50_ms']:6.0f} ms, p90 {s['ttft_p90_ms']:6.0f} ms, "
                  f"mean latency {s['e2e_mean_ms']:6.0f} ms", flush=True)
    summary = {}
    for policy, runs in results.items():
        summary[policy] = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
        summary[policy]["min"] = {k: round(min(r[k] for r in runs), 2) for k in runs[0]}
        summary[policy]["max"] = {k: round(max(r[k] for r in runs), 2) for k in runs[0]}
    c, s = summary["continuous"], summary["static"]
    summary["throughput_ratio"] = round(c["output_tokens_per_s"] / s["output_tokens_per_s"], 2)
    summary["ttft_p50_ratio"] = round(s["ttft_p50_ms"] / c["ttft_p50_ms"], 2)
    print(f"continuous/static: {summary['throughput_ratio']}x the throughput, "
          f"median TTFT {summary['ttft_p50_ratio']}x shorter")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
