"""A real Flower federation on one machine: a SuperLink, N SuperNodes and `flwr run`, each
a separate process on 127.0.0.1, all stopped on every way out.

    python snippets/ch11/partition.py --clients 3 --out runs/ch11/data/iid
    python snippets/ch11/federation.py --app snippets/ch11/fedapp --data runs/ch11/data/iid
    python snippets/ch11/federation.py --app snippets/ch11/fedapp --drop-node 2 --drop-round 2
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", default="snippets/ch11/fedapp", help="the Flower app's folder")
    ap.add_argument("--data", default="runs/ch11/data/iid", help="folder from partition.py")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strategy", choices=["fedavg", "fedprox", "fedadam"], default="fedavg")
    ap.add_argument("--proximal-mu", type=float, default=0.0)
    ap.add_argument("--fraction-train", type=float, default=1.0)
    ap.add_argument("--noise-multiplier", type=float, default=0.0)
    ap.add_argument("--clipping-norm", type=float, default=1.0)
    ap.add_argument("--round-timeout", type=float, default=30.0, help="seconds a round waits")
    ap.add_argument("--drop-node", type=int, default=-1, help="node that vanishes mid-round")
    ap.add_argument("--drop-round", type=int, default=2)
    ap.add_argument("--wrong-shape-node", type=int, default=-1, help="node with another model")
    ap.add_argument("--port", type=int, default=39091, help="SuperLink; nodes use the next ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="runs/ch11/flwr", help="FLWR_HOME, state and logs")
    args = ap.parse_args()
    problems = []
    if not 0 < args.fraction_train <= 1:
        problems.append(f"--fraction-train must be in (0, 1], got {args.fraction_train}")
    if args.rounds < 1:
        problems.append(f"--rounds must be at least 1, got {args.rounds}")
    if args.noise_multiplier > 0 and args.strategy == "fedadam":
        problems.append("DP accounting needs FedAvg's aggregation: use fedavg or fedprox")
    if args.nodes < 2:
        problems.append(f"--nodes must be at least 2, got {args.nodes}")
    if args.drop_node >= args.nodes or args.wrong_shape_node >= args.nodes:
        problems.append(f"a faulty node must be one of 0..{args.nodes - 1}")
    missing = [f for f in [f"client-{k}.npz" for k in range(args.nodes)] + ["test.npz"]
               if not (Path(args.data) / f).exists()]
    if not (Path(args.app) / "pyproject.toml").exists():
        problems.append(f"--app {args.app} has no pyproject.toml")
    if not problems and missing:
        problems.append(f"{args.data} has no {missing[0]}: run partition.py with "
                        f"--clients {args.nodes} --out {args.data} first")
    for port in range(args.port, args.port + args.nodes + 1):
        if not problems and port_in_use(port):
            problems.append(f"port {port} is in use: pick another --port")
    if problems:
        sys.exit(f"error: {problems[0]}")
    return args


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not port_in_use(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the SuperLink did not start on port {port}")
        time.sleep(0.2)


def tagged(tag: str) -> list[int]:
    """PIDs of live processes that carry our tag in their environment: the SuperLink
    starts its helper (flower-superexec) in a session of its own."""
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if f"CH11_FEDERATION={tag}".encode() in (d / "environ").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def stop(procs: dict, tag: str) -> None:
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (left := [p for p in tagged(tag) if p != os.getpid()]) and time.monotonic() < deadline:
        for p in procs.values():
            p.poll()  # reap the ones that have exited
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in procs.values():
        p.wait()


def main():
    args = parse_args()
    work = Path(args.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "home").mkdir(parents=True)
    data, app = Path(args.data).resolve(), Path(args.app).resolve()
    for f in data.glob("*.dropped"):
        f.unlink()
    (work / "home" / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
        f'address = "127.0.0.1:{args.port}"\ninsecure = true\n')
    tag = f"{os.getpid()}-{time.time_ns()}"
    env = dict(os.environ, FLWR_HOME=str(work / "home"), CH11_FEDERATION=tag)
    # The SuperLink starts helper programs (flower-superexec) by name.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    run_config = " ".join([
        f"num-rounds={args.rounds}", f"strategy='{args.strategy}'", f"min-nodes={args.nodes}",
        f"fraction-train={args.fraction_train}", f"proximal-mu={args.proximal_mu}",
        f"noise-multiplier={args.noise_multiplier}", f"clipping-norm={args.clipping_norm}",
        f"round-timeout={args.round_timeout}", f"seed={args.seed}",
        f"test-data='{data / 'test.npz'}'", f"out='{work / 'result.json'}'"])

    # --8<-- [start:commands]
    superlink = ["flower-superlink", "--insecure", "--port", str(args.port),
                 "--database", str(work / "state.db"), "--disable-runtime-dependency-installation"]
    supernodes = []
    for k in range(args.nodes):
        node_config = f"partition-id={k} data='{data / f'client-{k}.npz'}'"
        if k == args.drop_node:
            node_config += f" drop-round={args.drop_round}"
        if k == args.wrong_shape_node:
            node_config += " fault='wrong-shape'"
        supernodes.append(["flower-supernode", "--insecure", "--superlink",
                           f"127.0.0.1:{args.port}", "--port", str(args.port + 1 + k),
                           "--node-config", node_config])
    flwr_run = ["flwr", "run", str(app), "local", "--stream", "--run-config", run_config]
    # --8<-- [end:commands]

    procs: dict[str, subprocess.Popen] = {}
    # Stop everything on Ctrl-C or a termination signal too: `finally` below runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("error: terminated"))

    def start(name, argv):
        log = open(work / f"{name}.log", "w")
        shown = " ".join(argv).replace(str(work), args.workdir).replace(str(data), args.data)
        print("$ " + shown.replace(str(app), args.app), flush=True)
        procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=work, start_new_session=True)

    t0 = time.monotonic()
    try:
        start("superlink", superlink)
        wait_for_port(args.port, procs["superlink"])
        for k, argv in enumerate(supernodes):
            start(f"node{k}", argv)
        start("run", flwr_run)
        dropped = None
        while procs["run"].poll() is None:
            marker = data / f"client-{args.drop_node}.npz.dropped"
            if dropped is None and args.drop_node >= 0 and marker.exists():
                os.killpg(procs[f"node{args.drop_node}"].pid, signal.SIGKILL)
                dropped = time.monotonic() - t0
                print(f"killed node {args.drop_node} (SuperNode and ClientApp) during round "
                      f"{args.drop_round}", flush=True)
            if time.monotonic() - t0 > 120 + args.rounds * args.round_timeout:
                raise RuntimeError("the run did not finish in time")
            time.sleep(0.2)
        stream = (work / "run.log").read_text()
        if procs["run"].returncode != 0 or not (work / "result.json").exists():
            tail = [ln for ln in stream.splitlines() if "rror" in ln][-1:] or ["no result"]
            raise RuntimeError(f"flwr run failed: {tail[0].strip()}")
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    finally:
        stop(procs, tag)

    for line in stream.splitlines():
        if "rejected the update" in line or "Received" in line and "failures" in line:
            print("server: " + line.split(":", 1)[-1].strip())
    res = json.loads((work / "result.json").read_text())
    print("round  nodes sent  replies  aggregated  seconds  test accuracy")
    print(f"{0:>5}  {'':>10}  {'':>7}  {'':>10}  {'':>7}  {res['accuracy'][0]:.4f}")
    for r, acc in zip(res["rounds"], res["accuracy"][1:], strict=True):
        print(f"{r['round']:>5}  {r['sent']:>10}  {r['received']:>7}  {r['aggregated']:>10}  "
              f"{r['seconds']:>7.1f}  {acc:.4f}")
    summary = {"strategy": args.strategy, "nodes": args.nodes, "rounds": args.rounds,
               "accuracy": res["accuracy"], "final_accuracy": res["accuracy"][-1],
               "aggregated": [r["aggregated"] for r in res["rounds"]],
               "round": {str(r["round"]): {"accuracy": acc, "seconds": round(r["seconds"], 1),
                                           "aggregated": r["aggregated"]}
                         for r, acc in zip(res["rounds"], res["accuracy"][1:], strict=True)},
               "model_bytes": res["model_bytes"], "wall_s": round(time.monotonic() - t0, 1)}
    if dropped is not None:
        summary["dropped_at_s"] = round(dropped, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
