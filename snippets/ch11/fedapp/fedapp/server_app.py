"""The ServerApp: picks a strategy from the run config, guards it, runs the rounds, and
evaluates the global model on the server's own test set after every round."""

import json
import random
import time
from logging import WARNING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import (
    Grid,
    NeighboringRelation,
    PrivacyConfig,
    RdpAccountant,
    SamplingMethod,
    ServerApp,
)
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedProx,
    Strategy,
)
from flwr.supercore import log

from fedapp.task import evaluate, init_model, load_data

app = ServerApp()


def check_config(cfg) -> None:
    """Refuse values Flower would accept and then misbehave on: a fraction above 1
    makes the sampler wait forever for nodes that do not exist."""
    if not 0 < float(cfg["fraction-train"]) <= 1:
        raise ValueError(f"fraction-train must be in (0, 1], got {cfg['fraction-train']}")
    if int(cfg["num-rounds"]) < 1:
        raise ValueError(f"num-rounds must be at least 1, got {cfg['num-rounds']}")


# --8<-- [start:guard]
class RejectMalformed(Strategy):
    """Wraps a strategy; drops any reply whose arrays do not have the global model's
    names and shapes, with one log line, and aggregates the rest."""

    def __init__(self, inner: Strategy):
        self.inner, self.expected, self.history = inner, {}, {}

    def configure_train(self, server_round, arrays, config, grid):
        self.expected = {k: tuple(a.shape) for k, a in arrays.items()}
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        self.history[server_round] = {"sent": len(messages), "t0": time.monotonic()}
        return messages

    def aggregate_train(self, server_round, replies):
        kept, replies = [], list(replies)
        for msg in replies:
            if not msg.has_error():
                got = {k: tuple(a.shape) for k, a in msg.content["arrays"].items()}
                if got != self.expected:
                    k = next(k for k in self.expected if got.get(k) != self.expected[k])
                    log(WARNING, "round %d: rejected the update of node %d: %s has shape %s, "
                        "expected %s", server_round, msg.metadata.src_node_id, k,
                        got.get(k), self.expected[k])
                    continue
            kept.append(msg)
        h = self.history[server_round]
        h.update(received=len(replies), aggregated=len(kept), seconds=time.monotonic() - h["t0"])
        return self.inner.aggregate_train(server_round, kept)
# --8<-- [end:guard]

    def configure_evaluate(self, server_round, arrays, config, grid):
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        return self.inner.aggregate_evaluate(server_round, replies)

    def summary(self):
        self.inner.summary()


# --8<-- [start:strategy]
def make_strategy(cfg, nodes: int) -> Strategy:
    dp = float(cfg["noise-multiplier"]) > 0
    common = dict(fraction_train=float(cfg["fraction-train"]), fraction_evaluate=0.0,
                  min_train_nodes=int(cfg["min-nodes"]), min_available_nodes=int(cfg["min-nodes"]),
                  # Under DP every client counts once, so one clipped update moves the mean
                  # by at most C/m; weighting by data would let a large client move it more.
                  weighted_by_key="uniform-weight" if dp else "num-examples")
    name = str(cfg["strategy"])
    if dp and name == "fedadam":  # Flower's DP wrapper accounts only FedAvg's aggregation
        raise ValueError("DP accounting needs FedAvg's aggregation: use fedavg or fedprox")
    if name == "fedavg":
        strategy = FedAvg(**common)
    elif name == "fedprox":
        strategy = FedProx(**common, proximal_mu=float(cfg["proximal-mu"]))
    elif name == "fedadam":
        strategy = FedAdam(**common, eta=float(cfg["server-lr"]), eta_l=float(cfg["lr"]))
    else:
        raise ValueError(f"unknown strategy {name!r}: use fedavg, fedprox or fedadam")
    if dp:  # clip, add noise, and count the budget: one client added or removed
        accountant = RdpAccountant(PrivacyConfig(
            target_delta=float(cfg["dp-delta"]), population_size=nodes,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION))
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=float(cfg["noise-multiplier"]),
            clipping_norm=float(cfg["clipping-norm"]), num_sampled_clients=nodes,
            accountant=accountant)
    return RejectMalformed(strategy)
# --8<-- [end:strategy]


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    check_config(cfg)
    seed = int(cfg["seed"])
    random.seed(seed)  # Flower samples nodes with `random`
    np.random.seed(seed)  # and draws DP noise from NumPy's global generator
    x_test, y_test = load_data(str(cfg["test-data"]))
    curve = []

    def central_eval(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        loss, acc = evaluate({k: a.numpy() for k, a in arrays.items()}, x_test, y_test)
        curve.append(acc)
        return MetricRecord({"accuracy": acc, "loss": loss})

    strategy = make_strategy(cfg, nodes=int(cfg["min-nodes"]))
    initial = ArrayRecord({k: Array(v) for k, v in init_model(seed=seed).items()})
    train_config = ConfigRecord({"lr": float(cfg["lr"]), "local-epochs": int(cfg["local-epochs"]),
                                 "batch-size": int(cfg["batch-size"]), "seed": seed})
    strategy.start(grid=grid, initial_arrays=initial, num_rounds=int(cfg["num-rounds"]),
                   timeout=float(cfg["round-timeout"]), train_config=train_config,
                   evaluate_fn=central_eval)
    rounds = [{"round": r, **{k: v for k, v in h.items() if k != "t0"}}
              for r, h in sorted(strategy.history.items())]
    with open(str(cfg["out"]), "w") as f:
        json.dump({"strategy": str(cfg["strategy"]), "accuracy": curve, "rounds": rounds,
                   "model_bytes": initial.count_bytes()}, f)
