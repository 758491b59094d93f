"""The federation's update rules in one process, for the experiments that need many runs:
the same client code (fedapp/task.py) and the server rules of Flower's FedAvg, FedProx,
FedAdam and server-side DP clipping, written out. Repeats every setting over seeds.

    python snippets/ch11/simulate.py --strategies fedavg fedprox --partitions iid dirichlet
    python snippets/ch11/simulate.py --noise 0 0.5 2 --clients 10 --rounds 30
    python snippets/ch11/simulate.py --clients 3 --seeds 1 --match runs/ch11/flwr-iid/result.json
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "fedapp"))
from fedapp.task import client_seed, evaluate, init_model, local_train  # noqa: E402
from partition import make_partitions  # noqa: E402


# --8<-- [start:server-rules]
def fedavg(updates):
    """Weighted mean of the client models: w = sum_k (n_k / n) w_k."""
    n = sum(n_k for _, n_k in updates)
    return {k: sum(w_k[k] * (n_k / n) for w_k, n_k in updates) for k in updates[0][0]}


def clip(w_k, w, c):
    """Scale the update w_k - w down to L2 norm c (over all arrays), as Flower's
    DifferentialPrivacyServerSideFixedClipping does before it averages."""
    norm = np.sqrt(sum(float(np.sum((w_k[k] - w[k]) ** 2)) for k in w))
    scale = min(1.0, c / norm) if norm > 0 else 1.0
    return {k: w[k] + (w_k[k] - w[k]) * scale for k in w}


class FedAdam:
    """Server-side Adam on the pseudo-gradient delta = fedavg(w_k) - w (Reddi et al.),
    with the bias correction Flower 1.42 applies (t = round + 1)."""

    def __init__(self, eta, beta1=0.9, beta2=0.99, tau=1e-3):
        self.eta, self.b1, self.b2, self.tau, self.m, self.v = eta, beta1, beta2, tau, None, None

    def step(self, w, avg, server_round):
        delta = {k: avg[k] - w[k] for k in w}
        if self.m is None:
            self.m = {k: np.zeros_like(d) for k, d in delta.items()}
            self.v = {k: np.zeros_like(d) for k, d in delta.items()}
        self.m = {k: self.b1 * self.m[k] + (1 - self.b1) * delta[k] for k in w}
        self.v = {k: self.b2 * self.v[k] + (1 - self.b2) * delta[k] ** 2 for k in w}
        t = server_round + 1.0
        eta = self.eta * np.sqrt(1 - self.b2**t) / (1 - self.b1**t)
        return {k: w[k] + eta * self.m[k] / (np.sqrt(self.v[k]) + self.tau) for k in w}
# --8<-- [end:server-rules]


# --8<-- [start:epsilon]
def epsilon(z: float, rounds: int, delta: float) -> float:
    """(epsilon, delta) of `rounds` Gaussian releases with noise multiplier z, every
    client in every round (no sampling amplification): Renyi DP composes to
    rounds * a / (2 z^2) at order a; converting and minimising over a gives this."""
    return rounds / (2 * z**2) + np.sqrt(2 * rounds * np.log(1 / delta)) / z
# --8<-- [end:epsilon]


def run(a, strategy, data, noise, seed):
    """Test accuracy after each round (round 0 = the initial model), and the model."""
    x_tr, y_tr, parts, x_te, y_te = data
    rng = np.random.default_rng(seed)
    w = init_model(seed=seed)
    adam = FedAdam(a.server_lr) if strategy == "fedadam" else None
    mu = a.mu if strategy == "fedprox" else 0.0
    curve = [evaluate(w, x_te, y_te)[1]]
    per_round = max(int(len(parts) * a.fraction), 2)
    for r in range(1, a.rounds + 1):
        chosen = sorted(rng.choice(len(parts), per_round, replace=False))
        updates = []
        for k in chosen:
            w_k = local_train(w, x_tr[parts[k]], y_tr[parts[k]], epochs=a.epochs, lr=a.lr,
                              batch=a.batch, mu=mu, seed=client_seed(seed, r, k))
            updates.append((clip(w_k, w, a.clip) if noise > 0 else w_k, len(parts[k])))
        avg = fedavg(updates)
        if noise > 0:  # Gaussian noise of std z*C/m on the aggregate, m = sampled clients
            std = noise * a.clip / len(chosen)
            avg = {k: v + rng.normal(0, std, v.shape).astype(np.float32) for k, v in avg.items()}
        w = adam.step(w, avg, r) if adam else avg
        curve.append(evaluate(w, x_te, y_te)[1])
    return curve, w


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", nargs="+", default=["fedavg"],
                    choices=["fedavg", "fedprox", "fedadam"])
    ap.add_argument("--partitions", nargs="+", default=["iid"], choices=["iid", "dirichlet"])
    ap.add_argument("--noise", nargs="+", type=float, default=[0.0], help="noise multipliers z")
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--fraction", type=float, default=1.0, help="clients sampled per round")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--mu", type=float, default=0.1, help="FedProx proximal weight")
    ap.add_argument("--server-lr", type=float, default=0.01, help="FedAdam eta")
    ap.add_argument("--clip", type=float, default=1.0, help="clipping norm C for DP runs")
    ap.add_argument("--delta", type=float, default=1e-5, help="DP delta for epsilon")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--report-round", type=int, default=5, help="an early round to report")
    ap.add_argument("--save-model", help="where to save the first setting's final model")
    ap.add_argument("--match", help="a federation.py result to reproduce (seed 0)")
    a = ap.parse_args()
    if not 0 < a.fraction <= 1:
        sys.exit(f"error: --fraction must be in (0, 1], got {a.fraction}")
    if a.rounds < 1 or a.seeds < 1 or a.clients < 2:
        sys.exit("error: --rounds and --seeds must be at least 1, --clients at least 2")
    a.report_round = min(a.report_round, a.rounds)

    results = {}
    for part, strategy, noise in itertools.product(a.partitions, a.strategies, a.noise):
        name = f"{strategy}-{part}" + (f"-z{round(noise * 100)}" if len(a.noise) > 1 else "")
        curves = []
        for seed in range(a.seeds):
            # The split is drawn once per seed too: a repeat is a new federation.
            data = make_partitions(a.clients, part, a.alpha, seed)
            curve, w = run(a, strategy, data, noise, seed)
            curves.append(curve)
            if a.save_model and seed == 0 and not results:  # the first setting
                Path(a.save_model).parent.mkdir(parents=True, exist_ok=True)
                np.savez(a.save_model, **w)
        c = np.array(curves)
        final, early = c[:, -1], c[:, a.report_round]
        results[name] = {"final": {"median": float(np.median(final)), "min": float(final.min()),
                                   "max": float(final.max())},
                         "early": {"median": float(np.median(early)), "min": float(early.min()),
                                   "max": float(early.max())},
                         "median": np.median(c, 0).round(4).tolist(),
                         "min": c.min(0).round(4).tolist(), "max": c.max(0).round(4).tolist()}
        line = (f"{name:<22} final accuracy median {np.median(final):.4f}  "
                f"(min {final.min():.4f}, max {final.max():.4f}, {a.seeds} seeds)")
        if noise > 0:
            results[name]["epsilon"] = float(epsilon(noise, a.rounds, a.delta))
            line += f"  epsilon {results[name]['epsilon']:.3g} at delta {a.delta:g}"
        print(line, flush=True)
    summary = {"rounds": a.rounds, "clients": a.clients, "seeds": a.seeds, "alpha": a.alpha,
               "report_round": a.report_round,
               "runs": results}
    if a.match:
        real = json.loads(Path(a.match).read_text())["accuracy"]
        ours = results[next(iter(results))]["median"]
        diff = max(abs(x - y) for x, y in zip(real, ours, strict=True))
        print(f"federation.py: {' '.join(f'{v:.4f}' for v in real)}")
        print(f"in one process: {' '.join(f'{v:.4f}' for v in ours)}")
        summary["max_abs_diff"] = diff
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
