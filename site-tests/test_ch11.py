"""Chapter 11's bad input: one-line errors before anything starts, and a malformed client
update that the ServerApp rejects while the round goes on."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from book.registry import REPO

APP = REPO / "snippets" / "ch11" / "fedapp"


def run(argv, **kw):
    return subprocess.run([sys.executable, *argv], cwd=kw.get("cwd", REPO), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv,pattern", [
    (["--fraction-train", "1.5"], "error: --fraction-train must be in (0, 1], got 1.5"),
    (["--fraction-train", "0"], "error: --fraction-train must be in (0, 1], got 0.0"),
    (["--rounds", "-3"], "error: --rounds must be at least 1, got -3"),
    (["--drop-node", "7"], "error: a faulty node must be one of 0..2"),
    (["--noise-multiplier", "1", "--strategy", "fedadam"],
     "error: DP accounting needs FedAvg's aggregation: use fedavg or fedprox"),
])
def test_federation_refuses_bad_input_before_starting_anything(argv, pattern):
    res = run(["snippets/ch11/federation.py", "--app", "snippets/ch11/fedapp", *argv])
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [pattern]
    assert "flower-superlink" not in res.stdout  # nothing was started


@pytest.mark.parametrize("argv,pattern", [
    (["--fraction", "2"], "error: --fraction must be in (0, 1], got 2.0"),
    (["--attackers", "5", "--clients", "10"],
     "error: --attackers must be below half of --clients, got 5"),
])
def test_simulation_refuses_bad_input(argv, pattern):
    res = run(["snippets/ch11/simulate.py", *argv])
    assert res.returncode == 1
    assert res.stderr.strip() == pattern


@pytest.mark.parametrize("argv,pattern", [
    (["snippets/ch11/fed_lora.py", "--clients", "logs"],
     "error: a federation needs at least two clients with different data"),
    (["snippets/ch11/edge_llm.py", "--preset", "tiny", "--new-tokens", "100"],
     "error: --prompt-tokens + --new-tokens must be at most 128 for tiny"),
])
def test_llm_scripts_refuse_bad_input(argv, pattern):
    res = run(argv)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == pattern
    assert "Traceback" not in res.stderr


def test_server_rejects_an_update_of_the_wrong_shape_and_aggregates_the_rest():
    sys.path.insert(0, str(APP))
    from fedapp.server_app import RejectMalformed
    from fedapp.task import init_model
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg
    from flwr.supercore.task_identity import TaskIdentity

    # What a ServerApp process knows about itself; Message() reads it.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    w = init_model()
    arrays = ArrayRecord({k: Array(v) for k, v in w.items()})

    class Grid:  # the two calls FedAvg.configure_train makes
        def get_node_ids(self):
            return [1, 2, 3]

    strategy = RejectMalformed(FedAvg(fraction_evaluate=0.0, min_available_nodes=3))
    sent = list(strategy.configure_train(1, arrays, ConfigRecord({}), Grid()))
    replies = []
    for msg in sent:
        reply_w = {k: v + 1.0 for k, v in w.items()}
        if msg.metadata.dst_node_id == 2:
            reply_w["fc1.weight"] = reply_w["fc1.weight"][:, :-1]
        content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in reply_w.items()}),
                              "metrics": MetricRecord({"num-examples": 10})})
        replies.append(Message(content=content, reply_to=msg))

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("flwr").addHandler(handler)
    try:
        agg, _ = strategy.aggregate_train(1, replies)
    finally:
        logging.getLogger("flwr").removeHandler(handler)

    rejected = [ln for ln in lines if "rejected" in ln]
    assert rejected == ["round 1: rejected the update of node 2: fc1.weight has shape (64, 63), "
                        "expected (64, 64)"]
    assert strategy.history[1]["received"] == 3 and strategy.history[1]["aggregated"] == 2
    np.testing.assert_allclose(agg["fc2.bias"].numpy(), w["fc2.bias"] + 1.0)


def test_dp_strategy_weights_clients_equally_and_counts_the_budget():
    sys.path.insert(0, str(APP))
    from fedapp.server_app import make_strategy
    from fedapp.task import init_model
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    cfg = {"fraction-train": 1.0, "min-nodes": 3, "strategy": "fedavg", "noise-multiplier": 2.0,
           "clipping-norm": 1.0, "dp-delta": 1e-5}
    strategy = make_strategy(cfg, nodes=3)
    w = init_model()
    arrays = ArrayRecord({k: Array(v) for k, v in w.items()})

    class Grid:
        def get_node_ids(self):
            return [1, 2, 3]

    sent = list(strategy.configure_train(1, arrays, ConfigRecord({}), Grid()))
    replies = []
    for i, msg in enumerate(sent):  # unequal data, equal weights: Flower's accountant accepts it
        content = RecordDict({
            "arrays": ArrayRecord({k: Array(v + 0.001) for k, v in w.items()}),
            "metrics": MetricRecord({"num-examples": 100 * (i + 1), "uniform-weight": 1})})
        replies.append(Message(content=content, reply_to=msg))
    agg, _ = strategy.aggregate_train(1, replies)
    assert agg is not None
    spent = strategy.inner.privacy_spent()
    assert spent.num_releases == 1 and spent.epsilon > 0


def test_dp_strategy_refuses_fedadam_with_one_line():
    sys.path.insert(0, str(APP))
    from fedapp.server_app import make_strategy

    cfg = {"fraction-train": 1.0, "min-nodes": 3, "strategy": "fedadam", "noise-multiplier": 1.0,
           "clipping-norm": 1.0, "dp-delta": 1e-5, "server-lr": 0.01, "lr": 0.1}
    with pytest.raises(ValueError, match=r"^DP accounting needs FedAvg's aggregation: "
                                         r"use fedavg or fedprox$"):
        make_strategy(cfg, nodes=3)
