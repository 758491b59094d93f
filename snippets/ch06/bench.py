"""Benchmark any OpenAI-compatible server: throughput, TTFT, ITL, latency and goodput.

    python snippets/ch06/bench.py --url http://127.0.0.1:8100 --concurrency 8 --num-prompts 64
    python snippets/ch06/bench.py --url URL --request-rate 4 --dataset shared-prefix --repeats 3

Streams every request, times the first token and each later chunk, and counts tokens from
the server's usage report. Prompts are made from random token ids of the model's
tokenizer (or real text for `chat` and `code`). Each repeat draws fresh prompts.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import sysconfig
import time
from pathlib import Path

import aiohttp
from train_model import chat_samples

RETRY = {429, 500, 502, 503, 504}


class GiveUp(Exception):
    """Retries exhausted (429, 5xx, refused connection, timeout)."""


class Refused(Exception):
    """The server answered that the request itself is wrong (4xx): retrying cannot help."""


# --8<-- [start:workload]
def workload(a, tok, seed: int) -> list[dict]:
    """One request body per prompt. Random token ids are sent as their text, as vLLM's own
    benchmark does, so the server tokenizes every prompt as it would real traffic."""
    rng = random.Random(seed)
    ids = lambda n: [rng.randrange(1000, tok.vocab_size) for _ in range(n)]  # noqa: E731
    if a.dataset == "trace":  # a multi-turn trace (chapter 7): this repeat's requests, in order
        lines = [json.loads(x) for x in Path(a.trace).read_text().splitlines()]
        reqs = [{"prompt": r["prompt_token_ids"], "_conversation": r["conversation"],
                 "max_tokens": a.output_len, "temperature": a.temperature,
                 "ignore_eos": a.ignore_eos, "stream": True,
                 "stream_options": {"include_usage": True}}
                for r in lines if r.get("repeat", 0) == seed - a.seed]
        return reqs or sys.exit(f"error: {a.trace} has no repeat {seed - a.seed}; see --repeats")
    # Decoded random ids re-tokenize longer; one round trip brings them back to n tokens.
    text = lambda t: tok.decode(tok(tok.decode(t))["input_ids"][: len(t)])  # noqa: E731
    if a.dataset in ("chat", "code"):
        src = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
        texts = [p.read_text(errors="replace") for p in src]
        questions = [c.split("<|end|>")[0].removeprefix("<|user|>")
                     for p, t in zip(src, texts, strict=True) for c in chat_samples(t, p.stem)]
        texts, questions = rng.sample(texts, a.num_prompts), rng.sample(questions, a.num_prompts)
    prefix = ids(a.prefix_len)
    reqs = []
    for i in range(a.num_prompts):
        if a.dataset == "random":
            body = {"prompt": text(ids(a.input_len))}
        elif a.dataset == "shared-prefix":  # one long system prompt, a short question each
            body = {"prompt": text(prefix) + text(ids(a.input_len))}
        elif a.dataset == "mixed":  # a few long documents among many short chats
            n = a.long_len if rng.random() < a.long_share else a.input_len
            body = {"prompt": text(ids(n))}
        elif a.dataset == "code":  # the start of a real module: a draft model can guess it
            body = {"prompt": tok.decode(tok(texts[i])["input_ids"][: a.input_len])}
        else:  # questions like those the model saw in training
            body = {"messages": [{"role": "user", "content": questions[i]}]}
        reqs.append(body | {"max_tokens": a.output_len, "temperature": a.temperature,
                            "ignore_eos": a.ignore_eos, "stream": True,
                            "stream_options": {"include_usage": True}})
    return reqs
# --8<-- [end:workload]


# --8<-- [start:request]
async def one(session, a, body: dict) -> dict:
    """Send one streaming request; time each chunk. Retries 429, 5xx and refusals."""
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    for attempt in range(a.max_retries + 1):
        start, chunks, usage = time.perf_counter(), [], None
        try:
            async with session.post(a.url + path, json={"model": a.model, **body}) as r:
                if r.status in RETRY:
                    raise GiveUp(f"HTTP {r.status} {r.reason}")
                if r.status != 200:  # the server refused the request itself: not retried
                    msg = await r.text()
                    try:
                        msg = json.loads(msg).get("error", {}).get("message", msg)
                    except ValueError:
                        pass
                    raise Refused(f"HTTP {r.status}: {' '.join(str(msg).split())[:300]}")
                async for line in r.content:
                    if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                        continue
                    data = json.loads(line[6:])
                    usage = data.get("usage") or usage
                    choice = (data.get("choices") or [{}])[0]
                    if choice.get("text") or (choice.get("delta") or {}).get("content"):
                        chunks.append(time.perf_counter() - start)
            break
        except (aiohttp.ClientError, asyncio.TimeoutError, GiveUp) as exc:
            why = str(exc) or type(exc).__name__
            if attempt == a.max_retries:
                raise GiveUp(f"gave up after {a.max_retries} retries: {why}") from None
            await asyncio.sleep(a.backoff * 2**attempt)
    n_out = (usage or {}).get("completion_tokens", len(chunks))
    end = chunks[-1] if chunks else time.perf_counter() - start
    return {"ttft": chunks[0] if chunks else end, "e2e": end, "out": n_out,
            "in": (usage or {}).get("prompt_tokens", 0),
            "itl": [b - a_ for a_, b in zip(chunks, chunks[1:], strict=False)],
            "tpot": (end - chunks[0]) / (n_out - 1) if chunks and n_out > 1 else 0.0}
# --8<-- [end:request]


# --8<-- [start:scrape]
COUNTERS = ["vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:spec_decode_num_drafts",
            "vllm:spec_decode_num_draft_tokens", "vllm:spec_decode_num_accepted_tokens"]


async def scrape(session, url: str) -> dict[str, float]:
    """vLLM's Prometheus counters (summed over their labels); empty for other servers."""
    try:
        async with session.get(url + "/metrics") as r:
            text = await r.text() if r.status == 200 else ""
    except aiohttp.ClientError:
        return {}
    out = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0].removesuffix("_total")
        if name in out and not line.startswith("#"):
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def cache_and_spec(before: dict, after: dict) -> dict:
    d = {k.split(":")[1]: after[k] - before[k] for k in before}
    out = {}
    if d.get("prefix_cache_queries"):
        out["prefix_hit_rate"] = d["prefix_cache_hits"] / d["prefix_cache_queries"]
    if d.get("spec_decode_num_draft_tokens"):
        out["spec_acceptance_rate"] = (d["spec_decode_num_accepted_tokens"]
                                       / d["spec_decode_num_draft_tokens"])
        out["spec_accepted_per_draft"] = (d["spec_decode_num_accepted_tokens"]
                                          / d["spec_decode_num_drafts"])
    return out
# --8<-- [end:scrape]


async def run(a, reqs: list[dict], label: str) -> dict:
    sem = asyncio.Semaphore(a.concurrency)
    rng = random.Random(a.seed)
    done, results = 0, []
    timeout = aiohttp.ClientTimeout(total=a.timeout)
    headers = {"Authorization": f"Bearer {a.api_key}"} if a.api_key else {}
    # One connection per request in flight: aiohttp's default pool of 100 would queue the
    # rest inside the client, and their wait would count as the server's TTFT.
    conn = aiohttp.TCPConnector(limit=a.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers, connector=conn) as session:

        async def limited(body, after=None):
            nonlocal done
            if after is not None:  # a turn waits for the previous turn of its conversation
                await after
            async with sem:
                res = await one(session, a, body)
            done += 1
            if done % max(1, len(reqs) // 4) == 0 or done == len(reqs):
                print(f"  {label}: {done}/{len(reqs)} requests", file=sys.stderr, flush=True)
            return res

        before = await scrape(session, a.url)
        tasks, start, last = [], time.perf_counter(), {}
        for body in reqs:  # Poisson arrivals at --request-rate, or all at once
            conv = body.pop("_conversation", None)
            tasks.append(asyncio.create_task(limited(body, last.get(conv))))
            if conv is not None:
                last[conv] = tasks[-1]
            if a.request_rate != float("inf"):
                await asyncio.sleep(rng.expovariate(a.request_rate))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        duration = time.perf_counter() - start
        after = await scrape(session, a.url) if before else {}
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return summarize(a, results, duration) | (cache_and_spec(before, after) if before else {})


# --8<-- [start:summary]
def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))] * 1000 if xs else 0.0


def summarize(a, res: list[dict], duration: float) -> dict:
    itl = [x for r in res for x in r["itl"]]
    # Goodput: requests per second that met both objectives (TTFT, and mean ITL per request).
    good = sum(r["ttft"] * 1000 <= a.ttft_slo_ms and r["tpot"] * 1000 <= a.itl_slo_ms for r in res)
    out = {"requests": len(res), "duration_s": duration,
           "request_throughput": len(res) / duration,
           "output_tokens_per_s": sum(r["out"] for r in res) / duration,
           "input_tokens_per_s": sum(r["in"] for r in res) / duration,
           "goodput": good / duration, "good_share": good / len(res)}
    for name, xs in (("ttft", [r["ttft"] for r in res]), ("itl", itl),
                     ("tpot", [r["tpot"] for r in res]), ("e2e", [r["e2e"] for r in res])):
        for p in (50, 90, 99):
            out[f"{name}_p{p}_ms"] = pct(xs, p)
    return out
# --8<-- [end:summary]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8100")
    ap.add_argument("--model", help="served model name (default: the server's first)")
    ap.add_argument("--tokenizer", help="local tokenizer folder (default: --model)")
    ap.add_argument("--api-key")
    ap.add_argument("--dataset", choices=["random", "shared-prefix", "mixed", "chat", "code",
                                          "trace"], default="random")
    ap.add_argument("--trace", help="trace: JSON lines from snippets/ch07/chat_trace.py")
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--prefix-len", type=int, default=256, help="shared-prefix: prefix tokens")
    ap.add_argument("--long-len", type=int, default=1024, help="mixed: long prompt tokens")
    ap.add_argument("--long-share", type=float, default=0.1, help="mixed: share of long ones")
    ap.add_argument("--concurrency", default="8", help="requests in flight at most; a list "
                    "(1,16,64) sweeps, with 4 x concurrency prompts per level (8 to --num-prompts)")
    ap.add_argument("--request-rate", type=float, default=float("inf"), help="req/s, Poisson")
    ap.add_argument("--ignore-eos", action="store_true", help="always generate --output-len")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--ttft-slo-ms", type=float, default=1000.0)
    ap.add_argument("--itl-slo-ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--max-retries", type=int, default=4)
    ap.add_argument("--backoff", type=float, default=0.5, help="first retry delay, doubling")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per request")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default="bench", help="name of this run in --out")
    ap.add_argument("--out", help="also write the summary to this JSON file")
    a = ap.parse_args()
    a.url = a.url.rstrip("/").removesuffix("/v1")
    try:
        a.levels = [int(c) for c in str(a.concurrency).split(",")]
    except ValueError:
        sys.exit(f"error: --concurrency {a.concurrency} is not a number or a list of numbers")
    for k in ("num_prompts", "input_len", "output_len", "repeats"):
        if getattr(a, k) <= 0:
            sys.exit(f"error: --{k.replace('_', '-')} must be positive")
    if min(a.levels) <= 0:
        sys.exit("error: --concurrency must be positive")
    if a.dataset == "trace" and not (a.trace and Path(a.trace).exists()):
        sys.exit(f"error: --dataset trace needs --trace FILE; {a.trace} does not exist")
    try:
        return asyncio.run(amain(a))
    except GiveUp as exc:
        sys.exit(f"error: {a.url}: {exc}")
    except Refused as exc:
        sys.exit(f"error: {a.url} refused a request: {exc}")


async def amain(a) -> int:
    if not a.model:
        headers = {"Authorization": f"Bearer {a.api_key}"} if a.api_key else {}
        for attempt in range(a.max_retries + 1):
            try:
                async with aiohttp.ClientSession(headers=headers) as s, \
                        s.get(a.url + "/v1/models", timeout=aiohttp.ClientTimeout(10)) as r:
                    if r.status == 401:
                        sys.exit(f"error: {a.url} wants an API key (--api-key)")
                    if r.status in RETRY:
                        raise GiveUp(f"HTTP {r.status} {r.reason}")
                    a.model = (await r.json())["data"][0]["id"]
                    break
            except (aiohttp.ClientError, asyncio.TimeoutError, GiveUp) as exc:
                if attempt == a.max_retries:
                    raise GiveUp(f"gave up after {a.max_retries} retries: {exc}") from None
                await asyncio.sleep(a.backoff * 2**attempt)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.tokenizer or a.model)
    mode = f"{a.request_rate} req/s" if a.request_rate != float("inf") else "all at once"
    sweep, a.concurrency = len(a.levels) > 1, a.levels[0]
    if a.dataset != "trace":  # a trace replays as recorded: a warm-up would fill the cache
        await run(a, workload(a, tok, a.seed + 10_000)[:1], "warm-up")
    results = {}
    for i, level in enumerate(a.levels):
        a.concurrency = level
        n = min(a.num_prompts, max(8, 4 * level)) if sweep else a.num_prompts
        # Each level of a sweep gets prompts of its own: a prompt an earlier level sent
        # would hit the prefix cache and make the later level look faster than it is.
        base = a.seed + 1000 * i
        print(f"{a.dataset}: {n} prompts x {a.repeats}, {a.input_len} -> {a.output_len} tokens, "
              f"concurrency {level}, {mode}, model {a.model}", flush=True)
        runs = []
        for r in range(a.repeats):
            reqs = workload(a, tok, base + r)
            reqs = reqs if a.dataset == "trace" else reqs[:n]  # a trace replays whole
            s = await run(a, reqs, f"repeat {r + 1}/{a.repeats}")
            runs.append(s)
            print(f"repeat {r + 1}: {s['request_throughput']:.2f} req/s, "
                  f"{s['output_tokens_per_s']:,.0f} output tokens/s, "
                  f"TTFT p50 {s['ttft_p50_ms']:.0f} ms p99 {s['ttft_p99_ms']:.0f} ms, "
                  f"ITL p50 {s['itl_p50_ms']:.1f} ms p99 {s['itl_p99_ms']:.1f} ms, "
                  f"goodput {s['goodput']:.2f} req/s", flush=True)
        label = f"{a.label}{level}" if sweep else a.label
        summary = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}
        summary |= {"min": {k: round(min(r[k] for r in runs), 4) for k in runs[0]},
                    "max": {k: round(max(r[k] for r in runs), 4) for k in runs[0]},
                    "repeats": a.repeats, "label": label, "dataset": a.dataset,
                    "concurrency": level,
                    "request_rate": None if a.request_rate == float("inf") else a.request_rate}
        if a.out:
            out = Path(a.out)
            out = out.with_name(f"{out.stem}{level}{out.suffix}") if sweep else out
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(summary, indent=1) + "\n")
        results[label] = summary
    print(json.dumps(results if sweep else summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
