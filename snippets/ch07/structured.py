"""Ask an OpenAI-compatible server for JSON that follows a schema, and check what comes back.

The same request goes out twice: once free, once with `response_format` naming the
schema, which makes the server mask every token that would break the grammar. Both
replies are parsed and validated with jsonschema; the constrained one must pass.

    python snippets/ch07/structured.py --url http://127.0.0.1:8107 --model runs/ch06/model
"""

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def chat(url, body, timeout):
    req = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)["choices"][0]
    except urllib.error.HTTPError as e:
        fail(f"the server refused the request ({e.code}): {e.read().decode()[:200]}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"no server answers at {url}: {e}")


def check(text, schema):
    """None if `text` is JSON that follows `schema`, else the first reason it does not."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not JSON ({e.msg} at character {e.pos})"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        return e.message
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8107")
    ap.add_argument("--model", default="runs/ch06/model", help="the name the server serves")
    ap.add_argument("--schema", default="snippets/ch07/report.schema.json")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    if args.max_tokens < 1:
        fail("--max-tokens must be at least 1")
    try:
        schema = json.loads(Path(args.schema).read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, json.JSONDecodeError, jsonschema.SchemaError) as e:
        fail(f"--schema {args.schema} is not a JSON schema: {str(e).splitlines()[0]}")

    messages = [{"role": "user", "content": "Report the bug in pathlib.py as JSON."}]
    body = {"model": args.model, "messages": messages, "max_tokens": args.max_tokens,
            "temperature": 0, "seed": args.seed}
    free = chat(args.url, body, args.timeout)
    print(f"free:        {free['message']['content'][:70]!r}")
    print(f"             {check(free['message']['content'], schema) or 'valid'}")

    # --8<-- [start:request]
    body["response_format"] = {"type": "json_schema",
                               "json_schema": {"name": schema.get("title", "reply"),
                                               "schema": schema, "strict": True}}
    reply = chat(args.url, body, args.timeout)
    text = reply["message"]["content"]
    print(f"constrained: {text!r}")
    problem = check(text, schema)
    if problem:
        cut = " (cut off by --max-tokens)" if reply.get("finish_reason") == "length" else ""
        fail(f"the reply violates the schema it asked for{cut}: {problem}")
    # --8<-- [end:request]
    print("             valid against", args.schema)
    free_ok = check(free["message"]["content"], schema) is None
    summary = {"constrained_valid": True, "free_valid": free_ok, "reply_chars": len(text),
               "finish_reason": reply.get("finish_reason")}
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
