"""The ClientApp: each SuperNode runs it on its own data, named in its node config."""

import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedapp.task import client_seed, evaluate, load_data, local_train

app = ClientApp()


# --8<-- [start:train]
@app.train()
def train(msg: Message, context: Context) -> Message:
    node = context.node_config
    x, y = load_data(str(node["data"]))  # this node's own file: it never leaves the node
    cfg = msg.content["config"]
    server_round = int(cfg["server-round"])
    global_w = {k: a.numpy() for k, a in msg.content["arrays"].items()}

    if server_round == int(node.get("drop-round", 0)):
        # A device that goes away mid-round: it took the work and will never answer.
        Path(str(node["data"]) + ".dropped").touch()
        time.sleep(3600)

    w = local_train(global_w, x, y, epochs=int(cfg["local-epochs"]), lr=float(cfg["lr"]),
                    batch=int(cfg["batch-size"]), mu=float(cfg.get("proximal-mu", 0.0)),
                    seed=client_seed(int(cfg["seed"]), server_round, int(node["partition-id"])))
    if node.get("fault") == "wrong-shape":
        w["fc1.weight"] = w["fc1.weight"][:, :-1]  # a client built with another model
    loss, acc = evaluate(w, x, y)
    content = RecordDict({
        "arrays": ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in w.items()}),
        "metrics": MetricRecord({"train-loss": loss, "train-acc": acc, "num-examples": len(y),
                                 "uniform-weight": 1}),  # the server's choice of weights
    })
    return Message(content=content, reply_to=msg)
# --8<-- [end:train]


@app.evaluate()
def evaluate_local(msg: Message, context: Context) -> Message:
    x, y = load_data(str(context.node_config["data"]))
    w = {k: a.numpy() for k, a in msg.content["arrays"].items()}
    loss, acc = evaluate(w, x, y)
    metrics = MetricRecord({"eval-loss": loss, "eval-acc": acc, "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
