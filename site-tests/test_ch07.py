"""Chapter 7's bad input: each case is a one-line error and a non-zero exit.

The schema check runs against a stand-in OpenAI-compatible server on 127.0.0.1 that
answers with JSON breaking the schema, as a server without grammar support (or one
cut off by max_tokens) does; the other checks run before any server starts.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler

import pytest

from book.registry import REPO
from test_bad_input import _assert_one_line_error, _run


class StandIn(BaseHTTPRequestHandler):
    reply = ""
    finish = "stop"

    def do_POST(self):  # noqa: N802 (the http.server API)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"content": self.reply},
                                        "finish_reason": self.finish}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in(http_stub):
    return lambda reply, finish="stop": http_stub(
        type("Handler", (StandIn,), {"reply": reply, "finish": finish}))


@pytest.mark.parametrize("reply, finish, pattern", [
    ('{"module": "os", "line": 0, "severity": "high"}', "stop",
     r"^error: the reply violates the schema it asked for: 0 is less than the minimum of 1$"),
    ('{"module": "os", "line": 12, "severity": "urgent"}', "stop",
     r"^error: the reply violates the schema it asked for: 'urgent' is not one of "),
    ('{"module": "os", "li', "length",
     r"^error: the reply violates the schema it asked for \(cut off by --max-tokens\): not JSON"),
], ids=["out-of-range", "not-in-enum", "cut-off"])
def test_reply_that_breaks_its_schema(reply, finish, pattern, stand_in, tmp_path):
    url = stand_in(reply, finish)
    proc = _run(["snippets/ch07/structured.py", "--url", url], {}, 0, tmp_path)
    _assert_one_line_error(proc, pattern)


def test_schema_that_is_not_a_schema(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "objekt"}')
    proc = _run(["snippets/ch07/structured.py", "--schema", str(bad)], {}, 0, tmp_path)
    _assert_one_line_error(proc, r"^error: --schema .*bad\.json is not a JSON schema: ")


@pytest.mark.parametrize("ep, experts, pattern", [
    (3, 8, r"^error: --ep-size 3 does not divide the model's 8 experts$"),
    (4, 6, r"^error: --ep-size 4 does not divide the model's 6 experts$"),
], ids=["ep3-of-8", "ep4-of-6"])
def test_expert_parallel_size_that_does_not_divide(ep, experts, pattern, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"num_local_experts": experts, "num_experts_per_tok": 2, "num_hidden_layers": 2}))
    proc = _run(["snippets/ch07/moe_routing.py", "--model", str(tmp_path), "--ep-size", str(ep)],
                {}, 0, tmp_path)
    _assert_one_line_error(proc, pattern)


def test_chat_trace_bad_lengths(tmp_path):
    proc = _run(["snippets/ch07/chat_trace.py", "--user-len", "50", "10", "--out",
                 str(tmp_path / "t.jsonl")], {}, 0, tmp_path)
    _assert_one_line_error(proc, r"^error: --user-len 50 10 needs 1 <= MIN <= MAX$")


def test_radix_cache_example_is_exact():
    sys.path.insert(0, str(REPO / "snippets" / "ch07"))
    from radix_cache import RadixCache

    cache = RadixCache(page_size=1)
    assert cache.insert([1, 2, 3, 4]) == 4
    assert cache.match([1, 2, 3, 9]) == 3
    assert cache.insert([1, 2, 5]) == 1  # splits the edge after 1, 2
    assert cache.match([1, 2, 5, 7]) == 3 and cache.size == 5
    blocks = RadixCache(page_size=2)
    blocks.insert([1, 2, 3, 4, 5])  # only whole pages: 1 2 | 3 4
    assert blocks.match([1, 2, 3, 9]) == 2 and blocks.size == 4
    small = RadixCache(capacity=4)
    small.insert([1, 2, 3])
    small.insert([7, 8, 9])  # over capacity: the older leaf goes
    assert small.match([1, 2, 3]) == 0 and small.match([7, 8, 9]) == 3


def test_decode_instance_before_its_prefill_peer(tmp_path):
    """The decode server of a disaggregated pair refuses to start while its peer is not running."""
    proc = _run([str(REPO / "snippets/ch06/serve.py"), "start", "--name", "decode", "--after",
                 "prefill", "--model", str(tmp_path), "--port", "8202"], {}, 0, tmp_path)
    _assert_one_line_error(
        proc, r"^error: decode needs 'prefill' running first: no server named 'prefill' was started$")
    assert not (tmp_path / "runs/ch06/servers/decode.json").exists()


def test_cache_pressure_bad_input(tmp_path):
    proc = _run(["snippets/ch07/cache_pressure.py", "--trace", str(tmp_path / "none.jsonl")],
                {}, 0, tmp_path)
    _assert_one_line_error(proc, r"^error: .*none\.jsonl does not exist: write it with chat_trace\.py first$")
    (tmp_path / "t.jsonl").write_text("")
    proc = _run(["snippets/ch07/cache_pressure.py", "--trace", str(tmp_path / "t.jsonl"),
                 "--shares", "1.5"], {}, 0, tmp_path)
    _assert_one_line_error(proc, r"^error: --shares must be in \(0, 1\]; --group and --page-sizes positive$")


def test_prefill_vs_transfer_bad_rate(tmp_path):
    proc = _run(["snippets/ch07/prefill_vs_transfer.py", "--tflops", "0"], {}, 0, tmp_path)
    _assert_one_line_error(proc, r"^error: --prompt-tokens, --tflops and --link-gbps must be positive$")
