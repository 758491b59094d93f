"""Federated fine-tuning of chapter 3's GPT with LoRA adapters: every client keeps the base
model frozen, trains a low-rank adapter on its own text and sends only the adapter; the
server averages the adapters with the function Flower's FedAvg aggregates with.

    python snippets/ch11/fed_lora.py
    python snippets/ch11/fed_lora.py --rounds 5 --local-steps 10 --rank 4
"""

import argparse
import json
import sys
import time
from pathlib import Path
from pydoc_data.topics import topics  # English prose that ships with Python

import numpy as np
import torch
from flwr.app import ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import build  # noqa: E402

KINDS = ["logs", "sums", "json", "csv"]


def client_text(kind: str, rng: np.random.Generator, lines: int) -> str:
    """One kind of text per client: the clients' data differ in format, not just in size."""
    names = ["ada", "alan", "grace", "linus", "barbara", "ken", "edsger", "frances"]
    out = []
    for _ in range(lines):
        a, b = (int(v) for v in rng.integers(0, 1000, 2))
        name, city = rng.choice(names), rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Turin"])
        out.append({
            "logs": f"2025-{a % 12 + 1:02d}-{b % 28 + 1:02d} {a % 24:02d}:{b % 60:02d} "
                    f"{rng.choice(['INFO', 'WARN', 'ERROR'])} disk at {a % 100}%",
            "sums": f"{a}+{b}={a + b}",
            "json": f'{{"user": "{name}", "age": {a % 80 + 18}, "city": "{city}"}}',
            "csv": f"{name},{a % 80 + 18},{city},{b}",
        }[kind])
    return "\n".join(out) + "\n"


def batches(text: str, seq: int, batch: int, rng: np.random.Generator, device: str):
    """Random windows of bytes: byte-level tokens, ids 0..255 of the model's 512."""
    data = np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64)
    while True:
        starts = rng.integers(0, len(data) - seq - 1, batch)
        x = torch.from_numpy(np.stack([data[s : s + seq + 1] for s in starts])).to(device)
        yield x[:, :-1].contiguous(), x[:, 1:].contiguous()


# --8<-- [start:lora]
class LoRALinear(torch.nn.Module):
    """y = W x + (alpha / r) B A x: W stays frozen, only A (r x in) and B (out x r)
    train. B starts at zero, so the adapted model starts as the base model."""

    def __init__(self, base: torch.nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale = base.requires_grad_(False), alpha / rank
        self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
        torch.nn.init.kaiming_uniform_(self.lora_a, a=5**0.5)  # as loralib and PEFT do
        self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale


def add_lora(model, rank: int, alpha: float) -> dict[str, torch.nn.Parameter]:
    """Wrap the four linear layers of every block; freeze everything else."""
    model.requires_grad_(False)
    for block in model.blocks:
        for parent, name in [(block.attn, "qkv"), (block.attn, "proj"),
                             (block.mlp, "up"), (block.mlp, "down")]:
            setattr(parent, name, LoRALinear(getattr(parent, name), rank, alpha))
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def client_round(model, adapter, global_adapter, data, steps, lr) -> ArrayRecord:
    """Load the global adapter, train it on this client's text, reply with it alone."""
    load(adapter, global_adapter)
    opt = torch.optim.AdamW(adapter.values(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss = model(*next(data))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ArrayRecord({k: p.detach().cpu().clone() for k, p in adapter.items()})
# --8<-- [end:lora]


def load(adapter, state):
    with torch.no_grad():
        for k, p in adapter.items():
            p.copy_(state[k])


@torch.no_grad()
def held_out(model, evals) -> dict[str, float]:
    return {k: float(np.mean([model(x, y).item() for x, y in xs])) for k, xs in evals.items()}


def factor_gap(replies, avg) -> float:
    """Averaging A and B separately is not averaging the updates B A: relative difference."""
    gaps = []
    for name in (k[: -len("lora_a")] for k in avg if k.endswith("lora_a")):
        ba = [r["arrays"][name + "lora_b"].numpy() @ r["arrays"][name + "lora_a"].numpy()
              for r in replies]
        mean_ba = np.mean(ba, 0)
        prod = avg[name + "lora_b"].numpy() @ avg[name + "lora_a"].numpy()
        gaps.append(np.linalg.norm(mean_ba - prod) / np.linalg.norm(mean_ba))
    return float(np.mean(gaps))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", nargs="+", default=KINDS, choices=KINDS,
                    help="one client per kind of text")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--local-steps", type=int, default=6)
    ap.add_argument("--pretrain-steps", type=int, default=60, help="the base model, on prose")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--lr", type=float, default=3e-2, help="clients' AdamW on the adapter")
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="a client's CPU threads")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if min(a.rounds, a.local_steps, a.rank, a.seq, a.batch, a.threads) < 1:
        sys.exit("error: --rounds, --local-steps, --rank, --seq, --batch and --threads "
                 "must be at least 1")
    if len(set(a.clients)) < 2:
        sys.exit("error: a federation needs at least two clients with different data")
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but no CUDA device is available")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()

    model = build("tiny", seq_len=a.seq).to(a.device)
    prose = "".join(topics[k] for k in sorted(topics))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pretrain = batches(prose, a.seq, 16, np.random.default_rng(a.seed), a.device)
    for _ in range(a.pretrain_steps):
        loss = model(*next(pretrain))
        opt.zero_grad()
        loss.backward()
        opt.step()
    full = ArrayRecord({k: p.detach().cpu() for k, p in model.named_parameters()})
    print(f"base: chapter 3's tiny GPT, {model.num_params():,} parameters, "
          f"{a.pretrain_steps} steps on Python's documentation")

    adapter = add_lora(model, a.rank, a.alpha)
    data, evals = {}, {}
    for i, k in enumerate(a.clients):
        rngs = [np.random.default_rng([a.seed, i, j]) for j in range(4)]
        data[k] = batches(client_text(k, rngs[0], 2000), a.seq, a.batch, rngs[1], a.device)
        test = batches(client_text(k, rngs[2], 300), a.seq, 16, rngs[3], a.device)
        evals[k] = [next(test) for _ in range(2)]
    global_adapter = {k: p.detach().cpu().clone() for k, p in adapter.items()}

    def row(name, d):
        print(f"{name:<26}" + "".join(f"{d[k]:>7.2f}" for k in a.clients)
              + f"{np.mean(list(d.values())):>7.2f}", flush=True)

    print(f"{'held-out loss (nats/byte)':<26}" + "".join(f"{k:>7}" for k in a.clients)
          + "   mean")
    by_round = {0: held_out(model, evals)}
    row("base model", by_round[0])
    alone = {}
    for r in range(1, a.rounds + 1):
        replies = []
        for k in a.clients:
            rec = client_round(model, adapter, global_adapter, data[k], a.local_steps, a.lr)
            if r == 1:  # what one client's own adapter does to everyone's text
                load(adapter, rec.to_torch_state_dict())
                alone[k] = held_out(model, evals)
            replies.append(RecordDict({"arrays": rec, "metrics": MetricRecord(
                {"num-examples": a.local_steps * a.batch})}))
        avg = aggregate_arrayrecords(replies, "num-examples")
        gap = factor_gap(replies, avg)
        global_adapter = avg.to_torch_state_dict()
        load(adapter, global_adapter)
        by_round[r] = held_out(model, evals)
        row(f"round {r}, averaged adapter", by_round[r])
    for k in a.clients:
        row(f"{k} client's own, round 1", alone[k])

    n_adapter = sum(p.numel() for p in adapter.values())
    payload, whole = avg.count_bytes(), full.count_bytes()
    print(f"adapter: {n_adapter:,} parameters, {payload / 1e3:.0f} kB up per client per "
          f"round; the whole model: {whole / 1e3:,.0f} kB ({payload / whole:.1%})")
    print(f"B A from the averaged factors differs from the averaged B A by {gap:.0%}")
    mean = {r: float(np.mean(list(d.values()))) for r, d in by_round.items()}
    print(json.dumps({"clients": a.clients, "rounds": a.rounds, "loss": by_round, "alone": alone,
                      "mean": mean, "base_mean": mean[0], "final_mean": mean[a.rounds],
                      "adapter_params": n_adapter,
                      "adapter_kb": payload / 1e3, "full_kb": whole / 1e3,
                      "adapter_share": payload / whole, "factor_gap": gap,
                      "wall_s": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
