"""Run the torchrun command of an Indexed Job's manifest on this machine, as its pods would.

Each pod becomes a local torchrun agent with the environment Kubernetes would give it: the
container's env (the completion index where it reads it from the downward API),
JOB_COMPLETION_INDEX and the pod's host name. The first pod's DNS name in the rendezvous
endpoint or --master-addr becomes 127.0.0.1, container paths become local ones (--map), and
the flags that need GPUs get their CPU values; everything else is the manifest's own.
With --same-as, the command must first equal a command of an earlier chapter.

    python snippets/ch08/run_job_locally.py snippets/ch08/train-job.yaml \
        --map /opt/book=snippets --map /ckpt=runs/ch08/pvc
"""

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from manifests import INDEX_FIELDS, fail, load, split_torchrun, torchrun

# --8<-- [start:cpu-flags]
# What the GPU command becomes on CPU, as chapter 3's CPU and GPU tabs differ: flags only.
CPU_FLAGS = {"--nproc-per-node": "1", "--device": "cpu", "--preset": "tiny", "--dtype": "fp32",
             "--compile": None, "--global-batch": "8", "--micro-batch": "4", "--save-every": "10"}
CPU_ENV = {"OMP_NUM_THREADS": "1"}  # two agents share this machine's cores
# What may differ from the earlier chapter's command: where things are, not what runs.
MAY_DIFFER = {"--rdzv-endpoint host", "script", "--ckpt-dir"}
# --8<-- [end:cpu-flags]


def section(ref):
    """The non-empty lines of a named section of a snippet file, as a page shows them."""
    path, _, name = ref.partition(":")
    lines, inside = [], False
    for line in Path(path).read_text().splitlines():
        if f"[start:{name}]" in line or f"[end:{name}]" in line:
            inside = "[start:" in line
        elif inside and line.strip():
            lines.append(line)
    if not lines:
        fail(f"--same-as {ref}: no such section")
    return lines


def compare(run, env, ref):
    """Differences between the Job's torchrun command and the one in `ref`."""
    tokens = shlex.split(next(ln for ln in section(ref) if "torchrun" in ln))
    at = tokens.index("torchrun")
    ref_env = dict(t.split("=", 1) for t in tokens[:at])
    flags, script, script_args = split_torchrun(tokens[at + 1:])
    mine, other = dict(run[0]), dict(flags)
    mine_host, _, mine_port = mine.pop("--rdzv-endpoint", "").rpartition(":")
    ref_host, _, ref_port = other.pop("--rdzv-endpoint", "").rpartition(":")
    diffs = {}
    if mine_host != ref_host:
        diffs["--rdzv-endpoint host"] = (ref_host, mine_host)
    if mine_port != ref_port:
        diffs["--rdzv-endpoint port"] = (ref_port, mine_port)
    if script != run[1]:
        diffs["script"] = (script, run[1])
    for k in sorted(set(mine) | set(other)):
        if mine.get(k) != other.get(k):
            diffs["torchrun " + k] = (other.get(k), mine.get(k))
    a, b = dict(split_args(script_args)), dict(split_args(run[2]))
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            diffs[k] = (a.get(k), b.get(k))
    for k, v in ref_env.items():
        if env.get(k) != v:
            diffs["env " + k] = (v, env.get(k))
    return diffs


def split_args(args):
    """--flag value, --flag=value and bare --switch, as (flag, value) pairs."""
    out, i = [], 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1
        out.append((name, value if (eq or value) else None))
        i += 1
    return out


def kill_pod(proc):
    """Kill a pod's processes: the torchrun agent and its workers, each in its own session."""
    found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    for pid in [proc.pid] + [int(x) for x in found.stdout.split()]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def free_port(preferred):
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", help="a YAML file holding the Job")
    ap.add_argument("--map", action="append", default=[], metavar="CONTAINER=LOCAL",
                    help="read a container path prefix as this local one")
    ap.add_argument("--steps", type=int, default=20, help="training steps on CPU")
    ap.add_argument("--same-as", help="FILE:SECTION holding the command this Job must run")
    ap.add_argument("--kill-pod", type=int, metavar="INDEX",
                    help="kill this pod once the checkpoint of --after-step is on the volume, "
                         "then start a new one, as the Job controller would")
    ap.add_argument("--after-step", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=180, help="seconds before giving up")
    args = ap.parse_args()
    maps = [m.split("=", 1) for m in args.map]
    if any(len(m) != 2 or not m[0].startswith("/") for m in maps):
        fail("--map takes CONTAINER=LOCAL with an absolute container path, e.g. /ckpt=runs/ckpt")
    job = next((d for d in load([args.manifest]) if d.kind == "Job"), None)
    if job is None:
        fail(f"{args.manifest} holds no Job")
    spec = job.obj["spec"]["template"]["spec"]
    container = next((c for c in spec["containers"] if torchrun(c)), None)
    if container is None:
        fail(f"{job.where()}: no container runs torchrun")
    run = torchrun(container)
    env = {e["name"]: e.get("value", "") for e in container.get("env", []) if "value" in e}
    index_vars = [e["name"] for e in container.get("env", [])
                  if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") in INDEX_FIELDS]
    if args.same_as:
        diffs = compare(run, env, args.same_as)
        extra = {k: v for k, v in diffs.items() if k not in MAY_DIFFER}
        if extra:
            fail(f"{job.where()}: the command differs from {args.same_as} in "
                 + "; ".join(f"{k}: {a} vs {b}" for k, (a, b) in extra.items()))
        print(f"same command as {args.same_as}, but for where things are:")
        for k, (a, b) in diffs.items():
            print(f"  {k}: {a} -> {b}")

    def local(value):
        for src, dst in maps:
            if value == src or value.startswith(src + "/"):
                return dst + value[len(src):]
        return value

    flags, script, script_args = run
    pods = job.obj["spec"]["parallelism"]
    c10d = "--rdzv-endpoint" in flags
    if c10d:
        host, _, port = flags["--rdzv-endpoint"].rpartition(":")
        port = free_port(int(port))
        cmd = {**flags, "--rdzv-endpoint": f"127.0.0.1:{port}", "--local-addr": "127.0.0.1"}
        changed = {"--rdzv-endpoint": f"{host} -> 127.0.0.1:{port}"}
    else:  # static rendezvous: the agent of node rank 0 hosts the store
        host, port = flags.get("--master-addr", "127.0.0.1"), flags.get("--master-port", "29500")
        port = free_port(int(port))
        cmd = {**flags, "--master-addr": "127.0.0.1", "--master-port": str(port),
               "--local-addr": "127.0.0.1"}
        changed = {"--master-addr": f"{host} -> 127.0.0.1",
                   "--master-port": f"{flags.get('--master-port', '29500')} -> {port}"}
    overrides, pairs = {**CPU_FLAGS, "--steps": str(args.steps)}, []
    for k, v in split_args(script_args):
        if k in overrides:
            changed[k] = f"{v or ''} -> {overrides[k] or '(dropped)'}".strip()
            v = overrides[k]
            if v is None:
                continue
        pairs.append((k, v))
    cmd["--nproc-per-node"] = CPU_FLAGS["--nproc-per-node"]
    changed["--nproc-per-node"] = f"{flags['--nproc-per-node']} -> 1"
    print("for this CPU: " + ", ".join(f"{k} {v}" for k, v in changed.items()))
    argv = [sys.executable, "-m", "torch.distributed.run"]
    argv += [f"{k}={v}" if v is not None else k for k, v in cmd.items()]
    argv += [local(script)] + [f"{k}={local(v)}" if v is not None else k for k, v in pairs]

    logs = Path("runs/ch08")
    logs.mkdir(parents=True, exist_ok=True)

    def start(i, mode="w"):
        # On the cluster, pod 0 finds its own name in the endpoint and hosts the rendezvous
        # store; here every pod is 127.0.0.1, so each is told whether it is the host.
        name = f"{job.name}-{i}"
        pod_env = {**os.environ, **{k: local(v) for k, v in env.items()}, **CPU_ENV,
                   **dict.fromkeys(index_vars, str(i)),
                   "JOB_COMPLETION_INDEX": str(i), "HOSTNAME": name}
        pod_argv = argv[:3] + [f"--rdzv-conf=is_host={int(i == 0)}"] * c10d + argv[3:]
        out = open(logs / f"{name}.log", mode)
        return [name, out, subprocess.Popen(pod_argv, env=pod_env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)]

    ckpt_dir = local(dict(split_args(script_args)).get("--ckpt-dir") or "")
    ckpt = Path(ckpt_dir) / f"step_{args.after_step:06d}.pt"
    if args.kill_pod is not None and (not ckpt_dir or not 0 <= args.kill_pod < pods):
        fail("--kill-pod needs a Job that saves checkpoints (--ckpt-dir) and an index below "
             f"its {pods} pods")
    procs, killed, status = [], False, 0
    try:
        procs = [start(i) for i in range(pods)]
        print(f"started {pods} pods: {', '.join(n for n, _, _ in procs)}", flush=True)
        deadline = time.monotonic() + args.timeout
        while any(p.poll() is None for _, _, p in procs):
            if time.monotonic() > deadline or any(p.poll() for _, _, p in procs):
                status = 1
                break
            if args.kill_pod is not None and not killed and ckpt.exists():
                name, out, p = procs[args.kill_pod]
                kill_pod(p)  # the whole pod, as when its node fails
                out.close()
                print(f"{ckpt} is on the volume: killed pod {name}, and started a new pod "
                      f"with index {args.kill_pod}, as the Job controller does", flush=True)
                procs[args.kill_pod] = start(args.kill_pod, "a")
                killed = True
            time.sleep(0.2)
        status = status or max(p.returncode or 0 for _, _, p in procs)
    finally:
        for _, out, p in procs:
            if p.poll() is None:
                kill_pod(p)
            out.close()
    summary, seen = None, set()
    for name, _, p in procs:
        index = name.rsplit("-", 1)[1]
        from_index = "".join(f", {v}={index}" for v in index_vars)
        print(f"--- pod {name} (JOB_COMPLETION_INDEX={index}{from_index}), exit {p.returncode}")
        for line in (logs / f"{name}.log").read_text().splitlines():
            # Keep the trainer's lines, each error's last line, and a warning once.
            glog = re.match(r"^\[?[IWE]\d{4} [\d:.]+\s+\d*\s*\S+\] ?(.*)", line)
            if line.startswith("{"):
                summary = json.loads(line)
            elif line.startswith("[rank"):
                if re.match(r"^\[rank\d+\]: \w+(Error|Exception)", line):
                    print(re.sub(r"\. .*", ".", line))  # its first sentence
            elif glog:
                msg = re.sub(r" \(pid: \d+\) of binary: .*", "", glog.group(1))
                if (line.lstrip("[").startswith("E") or "Warning" in msg) and msg not in seen:
                    seen.add(msg)
                    print(msg)
            elif line.strip():
                print(line)
    if status or summary is None:
        fail(f"the pods did not finish training; see {logs}/*.log")
    print(json.dumps({"pods": pods, "same_as": 1 if args.same_as else 0, **summary}))


if __name__ == "__main__":
    main()
