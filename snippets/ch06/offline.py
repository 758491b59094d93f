"""vLLM as a library: the offline `LLM` API, with no server in between.

    python snippets/ch06/offline.py --model runs/ch06/model
"""

import argparse
import json
import os
import time

# On a CPU the KV cache lives in RAM; without this vLLM reserves most of the machine's memory.
# GPU builds ignore the variable.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # the server's log is read in the text

from vllm import LLM, SamplingParams  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch06/model")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()

    prompts = ["def fibonacci(n):", "import os\nimport sys\n\n\ndef main(", "class Stack:\n"]
    params = SamplingParams(temperature=0.7, max_tokens=args.max_tokens, seed=0)
    # On a CPU, compiling costs more start-up time than it saves on a model this small.
    llm = LLM(model=args.model, max_model_len=256, enforce_eager=args.device == "cpu", seed=0)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start

    for out in outputs:
        print(f"{out.prompt!r}\n  -> {out.outputs[0].text!r}")
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    print(json.dumps({"outputs": len(outputs), "tokens": tokens, "seconds": round(seconds, 3)}))


if __name__ == "__main__":  # vLLM starts its engine in a new process, which imports this file
    main()
