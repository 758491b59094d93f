"""The federation's update rules in one process, for the experiments that need many runs:
the same client code (fedapp/task.py) and the server rules of Flower's FedAvg, FedProx,
FedAdam, FedMedian, Krum and server-side DP clipping, written out. Repeats every setting
over seeds.

    python snippets/ch11/simulate.py --strategies fedavg fedprox --partitions iid dirichlet
    python snippets/ch11/simulate.py --noise 0 0.5 2 --uniform --clients 10 --rounds 30
    python snippets/ch11/simulate.py --strategies fedavg krum --attack-scale 0 10
    python snippets/ch11/simulate.py --clients 3 --seeds 1 --match runs/ch11/flwr-drop/result.json
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 64 x 64 matrices: threads only cost
import numpy as np  # noqa: E402

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


# --8<-- [start:robust-rules]
def fedmedian(updates):
    """Flower's FedMedian: the coordinate-wise median of the client models, unweighted."""
    return {k: np.median(np.stack([w_k[k] for w_k, _ in updates]), axis=0)
            for k in updates[0][0]}


def krum(updates, f):
    """Flower's Krum: keep the one client model whose n - f - 2 nearest neighbours are
    closest to it (sum of squared distances), assuming at most f attackers."""
    flat = np.stack([np.concatenate([w_k[k].ravel() for k in sorted(w_k)]) for w_k, _ in updates])
    d = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    near = max(1, len(updates) - f - 2)
    scores = [d[i, np.argsort(d[i])[1 : near + 1]].sum() for i in range(len(updates))]
    return updates[int(np.argmin(scores))][0]
# --8<-- [end:robust-rules]


# --8<-- [start:epsilon]
def epsilon(z: float, rounds: int, delta: float) -> float:
    """(epsilon, delta) of `rounds` Gaussian releases with noise multiplier z, every
    client in every round (no sampling amplification): Renyi DP composes to
    rounds * a / (2 z^2) at order a; converting and minimising over a gives this."""
    return rounds / (2 * z**2) + np.sqrt(2 * rounds * np.log(1 / delta)) / z


def flower_epsilon(z, rounds, delta, sampled, population, poisson=False) -> float:
    """The same budget from Flower's accountant (flwr[dp]): one client added or removed
    is the neighbouring relation; every client in every round, or Poisson sampling."""
    from flwr import serverapp as fl  # only the DP runs need it

    accountant = fl.RdpAccountant(fl.PrivacyConfig(
        target_delta=delta, population_size=population,
        neighboring_relation=fl.NeighboringRelation.ADD_OR_REMOVE_ONE,
        sampling_method=(fl.SamplingMethod.POISSON if poisson
                         else fl.SamplingMethod.NO_AMPLIFICATION)))
    accountant.compose(fl.GaussianPrivacyEvent(noise_multiplier=z, sample_size=sampled,
                                               population_size=population), count=rounds)
    return accountant.get_privacy_spent().epsilon
# --8<-- [end:epsilon]


def run(a, strategy, data, noise, attack, seed):
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
            if k < a.attackers and attack:  # poisoning: its own update, reversed and scaled
                w_k = {n: w[n] - attack * (w_k[n] - w[n]) for n in w}
            # Under DP every client weighs the same, so one client moves the mean by C/m.
            n_k = 1 if a.uniform else len(parts[k])
            updates.append((clip(w_k, w, a.clip) if noise > 0 else w_k, n_k))
        if strategy == "fedmedian":
            avg = fedmedian(updates)
        elif strategy == "krum":
            avg = krum(updates, a.attackers)
        else:
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
                    choices=["fedavg", "fedprox", "fedadam", "fedmedian", "krum"])
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
    ap.add_argument("--uniform", action="store_true", help="weight every client equally")
    ap.add_argument("--population", type=int, default=1000,
                    help="for the budget if the round's clients were a sample of this many")
    ap.add_argument("--attack-scale", nargs="+", type=float, default=[0.0],
                    help="attackers send their update times -S (0: no attack)")
    ap.add_argument("--attackers", type=int, default=1, help="clients 0..N-1 attack")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--report-round", type=int, default=5, help="an early round to report")
    ap.add_argument("--save-model", help="where to save the first setting's final model")
    ap.add_argument("--match", help="a federation.py result to reproduce (seed 0)")
    a = ap.parse_args()
    if not 0 < a.fraction <= 1:
        sys.exit(f"error: --fraction must be in (0, 1], got {a.fraction}")
    if a.rounds < 1 or a.seeds < 1 or a.clients < 2:
        sys.exit("error: --rounds and --seeds must be at least 1, --clients at least 2")
    if not 0 <= a.attackers < a.clients / 2:
        sys.exit(f"error: --attackers must be below half of --clients, got {a.attackers}")
    a.report_round = min(a.report_round, a.rounds)

    results = {}
    for part, attack, strategy, noise in itertools.product(a.partitions, a.attack_scale,
                                                           a.strategies, a.noise):
        # Keys for the record (no dots: they are paths); labels for the reader.
        name, label = f"{strategy}-{part}", f"{strategy}-{part}"
        if len(a.noise) > 1:
            name, label = name + f"-z{noise:g}".replace(".", "_"), label + f" z={noise:g}"
        if len(a.attack_scale) > 1:
            tag = f"attacked x{attack:g}" if attack else "no attack"
            name, label = name + ("-attacked" if attack else ""), label + f" {tag}"
        curves = []
        for seed in range(a.seeds):
            # The split is drawn once per seed too: a repeat is a new federation.
            data = make_partitions(a.clients, part, a.alpha, seed)
            curve, w = run(a, strategy, data, noise, attack, seed)
            curves.append(curve)
            if a.save_model and seed == 0 and not results:  # the first setting
                Path(a.save_model).parent.mkdir(parents=True, exist_ok=True)
                np.savez(a.save_model, **w)
                saved = f"saved {label}, seed 0 ({curve[-1]:.4f}), to {a.save_model}"
        c = np.array(curves)
        final, early = c[:, -1], c[:, a.report_round]
        spread = lambda v: {"median": float(np.median(v)), "min": float(v.min()),  # noqa: E731
                            "max": float(v.max())}
        results[name] = {"label": label, "final": spread(final), "early": spread(early),
                         "median": np.median(c, 0).round(4).tolist(),
                         "min": c.min(0).round(4).tolist(), "max": c.max(0).round(4).tolist()}
        line = (f"{label:<34} final accuracy median {np.median(final):.4f}  "
                f"(min {final.min():.4f}, max {final.max():.4f}, {a.seeds} seeds)")
        if noise > 0:
            m = max(int(a.clients * a.fraction), 2)
            results[name]["epsilon"] = float(epsilon(noise, a.rounds, a.delta))
            results[name]["epsilon_flower"] = flower_epsilon(noise, a.rounds, a.delta, m,
                                                             a.clients)
            results[name]["epsilon_sampled"] = flower_epsilon(
                noise, a.rounds, a.delta, m, max(a.population, m), poisson=True)
            line += (f"\n{'':<34} epsilon at delta {a.delta:g}: {results[name]['epsilon']:.3g} "
                     f"(closed form), {results[name]['epsilon_flower']:.3g} (Flower's "
                     f"RdpAccountant); {results[name]['epsilon_sampled']:.2g} if these {m} were "
                     f"a Poisson sample of {a.population:,}")
        print(line, flush=True)
    if a.save_model:
        print(saved)
    summary = {"rounds": a.rounds, "clients": a.clients, "seeds": a.seeds, "alpha": a.alpha,
               "epochs": a.epochs, "report_round": a.report_round, "runs": results}
    if a.match:  # the real run's rounds in which every node's update was aggregated
        real = json.loads(Path(a.match).read_text())
        full = next((i for i, r in enumerate(real["rounds"]) if r["aggregated"] < a.clients),
                    len(real["rounds"]))
        ours = results[next(iter(results))]["median"]
        if full < a.rounds:
            sys.exit(f"error: {a.match} aggregated all {a.clients} nodes in rounds 1..{full} "
                     f"only: simulate --rounds {full}")
        real = real["accuracy"][: a.rounds + 1]
        diff = max(abs(x - y) for x, y in zip(real, ours, strict=True))
        print(f"federation.py, rounds 0-{a.rounds}: {' '.join(f'{v:.4f}' for v in real)}")
        print(f"in one process, rounds 0-{a.rounds}: {' '.join(f'{v:.4f}' for v in ours)}")
        summary["max_abs_diff"] = diff
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
