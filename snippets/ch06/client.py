"""Talk to the server through the OpenAI Python client: completion, chat, stream, JSON.

    python snippets/ch06/client.py --url http://127.0.0.1:8100
"""

import argparse
import json
import sys

from openai import OpenAI

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--url", default="http://127.0.0.1:8100")
ap.add_argument("--api-key", default="none", help="what the server's --api-key expects")
ap.add_argument("--samples", type=int, default=1, help="completions to print")
args = ap.parse_args()

client = OpenAI(base_url=args.url.rstrip("/") + "/v1", api_key=args.api_key, max_retries=0)
model = client.models.list().data[0].id

# --8<-- [start:calls]
starts = ["def read_config(path):", "class LRUCache:\n    def __init__(self,", "import os\n\n\n"]
for start in starts[: args.samples]:
    out = client.completions.create(model=model, prompt=start, max_tokens=48, temperature=0.7,
                                    seed=0)
    print(f"completion: {start!r} -> {out.choices[0].text!r}")

chat = client.chat.completions.create(
    model=model, max_tokens=32, temperature=0,
    messages=[{"role": "user", "content": "What does shutil.copyfile do?"}])
print(f"chat: {chat.choices[0].message.content!r} ({chat.usage.prompt_tokens} prompt tokens "
      "after the chat template)")

stream = client.completions.create(model=model, prompt="for i in range(", max_tokens=12,
                                   temperature=0, stream=True)
pieces = [chunk.choices[0].text for chunk in stream if chunk.choices]
print(f"stream: {len(pieces)} chunks: {pieces}")

schema = {"type": "object", "properties": {"module": {"type": "string", "maxLength": 16},
                                           "is_package": {"type": "boolean"}},
          "required": ["module", "is_package"], "additionalProperties": False}
js = client.chat.completions.create(
    model=model, max_tokens=64, temperature=0,
    messages=[{"role": "user", "content": "Describe the json module."}],
    response_format={"type": "json_schema", "json_schema": {"name": "m", "schema": schema}})
value = json.loads(js.choices[0].message.content)  # grammar-constrained: always parses
print(f"structured: {value}")
# --8<-- [end:calls]
print(json.dumps({"model": model, "stream_chunks": len(pieces), "json_keys": sorted(value)}))
sys.exit(0)
