"""Chapter 6: the real vLLM server on CPU, the book's benchmark client, and their bad input.

One vLLM server (the CPU build, in .venv-vllm) serves a freshly trained tiny model to
every test of this file; it starts on 127.0.0.1 once per session and is stopped on every
exit path. Stand-in servers play a server that is slow or answers 429.
"""

import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from book.registry import REPO

VPY = REPO / ".venv-vllm" / "bin" / "python"
SNIP = REPO / "snippets" / "ch06"
KEY = "book-test-key"
pytestmark = pytest.mark.skipif(not VPY.exists(), reason="make setup-vllm builds .venv-vllm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vrun(args, cwd, env=None, timeout=600):
    return subprocess.run([str(VPY), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def assert_one_line_error(proc, pattern):
    err = proc.stderr.strip()
    assert proc.returncode != 0, f"exit 0 for bad input: {proc.stdout[-500:]}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "requests" not in ln]
    assert lines and re.search(pattern, lines[-1]), f"last line {lines[-1:]!r} !~ {pattern!r}"
    assert sum("error" in ln.lower() for ln in lines) == 1, err


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A tiny trained model (a few steps: these tests check the API, not the prose)."""
    d = tmp_path_factory.mktemp("ch06")
    p = vrun([SNIP / "train_model.py", "--steps", "5", "--max-chars", "400000"], cwd=d)
    assert p.returncode == 0, p.stderr[-2000:]
    return d


@pytest.fixture(scope="session")
def server(workdir):
    port = free_port()
    args = [SNIP / "serve.py", "start", "--name", "test", "--port", port, "--", "--max-model-len",
            "512", "--enforce-eager", "--api-key", KEY, "--structured-outputs-config",
            '{"backend":"xgrammar","disable_any_whitespace":true}']
    try:
        p = vrun(args, cwd=workdir, timeout=420)
        assert p.returncode == 0, p.stderr[-3000:]
        yield {"url": f"http://127.0.0.1:{port}", "model": "runs/ch06/model", "dir": workdir}
    finally:
        vrun([SNIP / "serve.py", "stop", "--name", "test"], cwd=workdir, timeout=120)
        pid = workdir / "runs/ch06/servers/test.pid"
        if pid.exists():  # stop failed: take the whole process group down
            try:
                os.killpg(int(pid.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def call(server, path, body=None, key=KEY):
    req = urllib.request.Request(server["url"] + path, method="POST" if body else "GET",
                                 data=json.dumps(body).encode() if body else None)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read().decode()
    return raw if path == "/metrics" or (body or {}).get("stream") else json.loads(raw)


def test_completion(server):
    out = call(server, "/v1/completions", {"model": server["model"], "prompt": "def main(",
                                          "max_tokens": 8, "temperature": 0, "ignore_eos": True})
    assert out["usage"]["completion_tokens"] == 8 and isinstance(out["choices"][0]["text"], str)


def test_chat_uses_the_template(server):
    msgs = [{"role": "user", "content": "What does json.dumps do?"}]
    out = call(server, "/v1/chat/completions", {"model": server["model"], "messages": msgs,
                                               "max_tokens": 8})
    assert isinstance(out["choices"][0]["message"]["content"], str)
    from_template = "<|user|>What does json.dumps do?<|end|>\n<|assistant|>"
    p = vrun(["-c", "import sys; from transformers import AutoTokenizer as A; "
              "print(len(A.from_pretrained(sys.argv[1])(sys.argv[2])['input_ids']))",
              "runs/ch06/model", from_template], cwd=server["dir"])
    assert out["usage"]["prompt_tokens"] == int(p.stdout.strip()), p.stderr[-500:]


def test_streaming_sends_chunks(server):
    raw = call(server, "/v1/completions", {"model": server["model"], "prompt": "import os\n",
                                          "max_tokens": 6, "ignore_eos": True, "stream": True})
    events = [ln for ln in raw.splitlines() if ln.startswith("data: ")]
    assert len(events) >= 6 and events[-1] == "data: [DONE]"


def prefix_counters(server) -> tuple[float, float]:
    text = call(server, "/metrics", key=None)  # /metrics stays open under --api-key
    get = lambda n: sum(float(m) for m in re.findall(rf"^{n}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M))  # noqa: E731
    return get("vllm:prefix_cache_queries_total"), get("vllm:prefix_cache_hits_total")


def test_metrics_and_prefix_cache_hits(server):
    q0, h0 = prefix_counters(server)
    p = vrun([SNIP / "bench.py", "--url", server["url"], "--api-key", KEY, "--dataset",
              "shared-prefix", "--prefix-len", "300", "--input-len", "8", "--num-prompts", "8",
              "--output-len", "4", "--concurrency", "1"], cwd=server["dir"])
    assert p.returncode == 0, p.stderr[-2000:]
    q1, h1 = prefix_counters(server)
    # 9 prompts of about 308 tokens (a warm-up with its own prefix, then 8 sharing one): 7
    # find the first 256 or more prefix tokens cached, in whole blocks (128 tokens on CPUs).
    assert q1 - q0 >= 9 * 290 and (h1 - h0) / (q1 - q0) > 0.5, (q0, h0, q1, h1)


def test_structured_output_follows_the_schema(server):
    # A pattern, not only maxLength: the grammar for a plain JSON string let a barely
    # trained model emit a raw control character, which json.loads then refuses.
    schema = {"type": "object", "properties": {"module": {"type": "string", "pattern": "^[a-z_]{1,12}$"},
                                               "stdlib": {"type": "boolean"}},
              "required": ["module", "stdlib"], "additionalProperties": False}
    out = call(server, "/v1/chat/completions", {
        "model": server["model"], "max_tokens": 60, "temperature": 0,
        "messages": [{"role": "user", "content": "Describe os.py as JSON."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "m", "schema": schema}}})
    value = json.loads(out["choices"][0]["message"]["content"])
    assert set(value) == {"module", "stdlib"} and isinstance(value["stdlib"], bool)
    assert re.fullmatch(r"[a-z_]{1,12}", value["module"]), value


def test_api_key_is_required(server):
    with pytest.raises(urllib.error.HTTPError) as exc:
        call(server, "/v1/models", key=None)
    assert exc.value.code == 401
    assert call(server, "/v1/models")["data"][0]["id"] == server["model"]


def test_bench_client_reports_every_metric(server):
    p = vrun([SNIP / "bench.py", "--url", server["url"], "--api-key", KEY, "--num-prompts", "6",
              "--input-len", "32", "--output-len", "8", "--ignore-eos", "--repeats", "2"],
             cwd=server["dir"])
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(p.stdout.strip().splitlines()[-1])
    for k in ("request_throughput", "output_tokens_per_s", "goodput", "ttft_p50_ms", "ttft_p90_ms",
              "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "e2e_p99_ms"):
        assert k in s and k in s["min"] and s["min"][k] <= s[k] <= s["max"][k], k
    assert s["requests"] == 6 and s["output_tokens_per_s"] > 0


def test_prompt_longer_than_the_server_allows(server):
    p = vrun([SNIP / "bench.py", "--url", server["url"], "--api-key", KEY, "--num-prompts", "1",
              "--input-len", "600", "--output-len", "8"], cwd=server["dir"])
    assert_one_line_error(p, r"^error: .*refused a request: HTTP 400: .*(maximum|context|512)")


# --- the client against servers that are down, slow or overloaded ---------------------------

class Stub(BaseHTTPRequestHandler):
    mode = "429"

    def log_message(self, *a):
        pass

    def do_POST(self):
        if self.mode == "slow":
            time.sleep(3)
        self.send_response(429 if self.mode == "429" else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "slow down"}}')


@pytest.fixture
def stub(http_stub):
    return lambda mode: http_stub(type("H", (Stub,), {"mode": mode}))


@pytest.mark.parametrize("mode, pattern", [
    ("down", r"^error: http://127\.0\.0\.1:\d+: gave up after 2 retries: .*(onnect|refused)"),
    ("429", r"^error: http://127\.0\.0\.1:\d+: gave up after 2 retries: HTTP 429"),
    ("slow", r"^error: http://127\.0\.0\.1:\d+: gave up after 2 retries: .*Timeout"),
])
def test_bench_gives_up_in_one_line(mode, pattern, stub, workdir):
    url = f"http://127.0.0.1:{free_port()}" if mode == "down" else stub(mode)
    start = time.time()
    p = vrun([SNIP / "bench.py", "--url", url, "--model", "runs/ch06/model", "--num-prompts", "2",
              "--max-retries", "2", "--backoff", "0.1", "--timeout", "1"], cwd=workdir)
    assert_one_line_error(p, pattern)
    assert time.time() - start < 60


# --- serve.py refuses what cannot start, before starting it -------------------------------

FAKE_CUDA = textwrap.dedent("""
    import os, types
    n = int(os.environ.get("BOOK_FAKE_GPUS", "0"))
    if n:
        import torch
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: n
        torch.cuda.get_device_properties = lambda i: types.SimpleNamespace(total_memory=80 * 2**30)
""")


@pytest.mark.parametrize("extra, gpus, pattern", [
    (["--tensor-parallel-size", "2"], 1, r"^error: TP 2 x PP 1 x DP 1 needs 2 GPU\(s\); --gpus all "
                                         r"gives 1 of the 1 on this machine$"),
    (["-tp", "4", "--data-parallel-size", "2"], 4, r"needs 8 GPU\(s\)"),
    (["--gpu-memory-utilization", "0.0001"], 1, r"^error: --gpu-memory-utilization 0.0001 gives "
                                                r"0.01 GiB per GPU, less than the 0.01 GiB of weights"),
    (["--gpu-memory-utilization", "1.5"], 1, r"^error: --gpu-memory-utilization 1.5 must be in"),
], ids=["tp-more-than-gpus", "tp-times-dp", "memory-too-small", "memory-above-one"])
def test_serve_refuses_before_starting(extra, gpus, pattern, workdir, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(FAKE_CUDA)
    start = time.time()
    p = vrun([SNIP / "serve.py", "start", "--device", "cuda", "--port", free_port(), "--", *extra],
             cwd=workdir, env={"PYTHONPATH": str(tmp_path), "BOOK_FAKE_GPUS": str(gpus)})
    assert_one_line_error(p, pattern)
    assert not (workdir / "runs/ch06/servers/main.json").exists()
    assert time.time() - start < 60


def test_serve_refuses_a_folder_without_a_model(workdir):
    p = vrun([SNIP / "serve.py", "start", "--model", "runs/no/model", "--port", free_port()],
             cwd=workdir)
    assert_one_line_error(p, r"^error: --model runs/no/model has no config\.json")
