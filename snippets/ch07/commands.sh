# Commands shown in chapter 7. Each named section is one block on the page.
# CPU blocks that need vLLM, transformers or aiohttp run with chapter 6's vLLM CPU
# environment (.venv-vllm); GPU blocks with a Python that has vLLM 0.24 (or SGLang 0.5.16)
# for CUDA installed.

# --8<-- [start:radix-demo]
python snippets/ch07/radix_cache.py
python snippets/ch07/radix_cache.py --page-size 16
# --8<-- [end:radix-demo]

# --8<-- [start:chat-trace]
python snippets/ch07/chat_trace.py --out runs/ch07/chat.jsonl
# --8<-- [end:chat-trace]

# --8<-- [start:cache-pressure]
python snippets/ch07/cache_pressure.py --trace runs/ch07/chat.jsonl --shares 1 0.5 0.25 --group 2
# --8<-- [end:cache-pressure]

# --8<-- [start:cpu-model]
.venv-vllm/bin/python snippets/ch06/train_model.py --steps 0 --max-chars 1000000 --out runs/ch07/model
# --8<-- [end:cpu-model]

# --8<-- [start:cpu-session]
.venv-vllm/bin/python snippets/ch06/serve.py start --name ch07 --model runs/ch07/model --port 8107 -- --max-model-len 512 --block-size 32 --enforce-eager --structured-outputs-config '{"backend":"xgrammar","disable_any_whitespace":true}'
.venv-vllm/bin/python snippets/ch06/bench.py --url http://127.0.0.1:8107 --dataset trace --trace runs/ch07/chat.jsonl --concurrency 1 --output-len 8 --out runs/ch07/cpu/chat.json
.venv-vllm/bin/python snippets/ch07/prefix_hits.py --trace runs/ch07/chat.jsonl --url http://127.0.0.1:8107 --out runs/ch07/cpu/hits.json
.venv-vllm/bin/python snippets/ch07/structured.py --url http://127.0.0.1:8107 --model runs/ch07/model --schema snippets/ch07/report.schema.json --out runs/ch07/cpu/structured.json
.venv-vllm/bin/python snippets/ch06/serve.py stop --name ch07
python snippets/ch07/collect.py runs/ch07/cpu
# --8<-- [end:cpu-session]

# --8<-- [start:chat-trace-gpu]
python snippets/ch07/chat_trace.py --vocab 16384 --conversations 128 --turns 5 --system-len 512 --user-len 32 128 --reply-len 32 128 --repeats 3 --out runs/ch07/chat-gpu.jsonl
# --8<-- [end:chat-trace-gpu]

# --8<-- [start:moe-cpu]
.venv-vllm/bin/python snippets/ch07/make_moe.py --tokenizer runs/ch07/model --out runs/ch07/moe
.venv-vllm/bin/python snippets/ch07/moe_routing.py --model runs/ch07/moe --ep-size 2
# --8<-- [end:moe-cpu]

# --8<-- [start:kv-math]
python snippets/ch07/kv_transfer.py --shape book_1b --prompt-tokens 256 3072
# --8<-- [end:kv-math]

# --8<-- [start:prefill-cost]
python snippets/ch07/prefill_vs_transfer.py --shapes book_1b llama31_70b --prompt-tokens 3072 --tflops 989
# --8<-- [end:prefill-cost]

# --8<-- [start:ep-size-3]
.venv-vllm/bin/python snippets/ch07/moe_routing.py --model runs/ch07/moe --ep-size 3
# --8<-- [end:ep-size-3]

# --8<-- [start:decode-first]
.venv-vllm/bin/python snippets/ch06/serve.py start --name decode --after prefill --model runs/ch07/model --port 8202
# --8<-- [end:decode-first]

# --8<-- [start:sglang-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
python snippets/ch07/chat_trace.py --vocab 16384 --conversations 128 --turns 5 --system-len 512 --user-len 32 128 --reply-len 32 128 --repeats 3 --out runs/ch07/chat-gpu.jsonl
python snippets/ch06/serve.py start --name sglang --engine sglang --model runs/ch07/model-1b --device cuda --port 8300 -- --context-length 4096 --mem-fraction-static 0.85 --chunked-prefill-size 8192 --cuda-graph-max-bs-decode 128 --schedule-policy lpm --enable-metrics --grammar-backend xgrammar --constrained-json-disable-any-whitespace --sampling-backend pytorch --cuda-graph-backend-prefill=disabled
python snippets/ch06/bench.py --url http://127.0.0.1:8300 --dataset trace --trace runs/ch07/chat-gpu.jsonl --output-len 128 --ignore-eos --concurrency 32 --repeats 3 --out runs/ch07/sglang/chat.json
python snippets/ch07/prefix_hits.py --trace runs/ch07/chat-gpu.jsonl --url http://127.0.0.1:8300 --out runs/ch07/sglang/chat_hits.json
python snippets/ch06/bench.py --url http://127.0.0.1:8300 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 16 --concurrency 1 --repeats 3 --out runs/ch07/sglang/c1.json
python snippets/ch06/bench.py --url http://127.0.0.1:8300 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 32 --concurrency 4 --repeats 3 --out runs/ch07/sglang/c4.json
python snippets/ch06/bench.py --url http://127.0.0.1:8300 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 128 --concurrency 16 --repeats 3 --out runs/ch07/sglang/c16.json
python snippets/ch06/bench.py --url http://127.0.0.1:8300 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 256 --concurrency 64 --repeats 3 --out runs/ch07/sglang/c64.json
python snippets/ch07/structured.py --url http://127.0.0.1:8300 --model runs/ch07/model-1b --schema snippets/ch07/report.schema.json --out runs/ch07/sglang/structured.json
python snippets/ch07/frontend.py --url http://127.0.0.1:8300 --programs 64 --out runs/ch07/sglang/frontend.json
python snippets/ch06/serve.py stop --name sglang
python snippets/ch07/collect.py runs/ch07/sglang
# --8<-- [end:sglang-gpu]

# --8<-- [start:vllm-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
python snippets/ch07/chat_trace.py --vocab 16384 --conversations 128 --turns 5 --system-len 512 --user-len 32 128 --reply-len 32 128 --repeats 3 --out runs/ch07/chat-gpu.jsonl
python snippets/ch06/serve.py start --name vllm --model runs/ch07/model-1b --device cuda --port 8301 -- --max-model-len 4096 --gpu-memory-utilization 0.85 --max-num-batched-tokens 8192
python snippets/ch06/bench.py --url http://127.0.0.1:8301 --dataset trace --trace runs/ch07/chat-gpu.jsonl --output-len 128 --ignore-eos --concurrency 32 --repeats 3 --out runs/ch07/vllm/chat.json
python snippets/ch07/prefix_hits.py --trace runs/ch07/chat-gpu.jsonl --url http://127.0.0.1:8301 --out runs/ch07/vllm/chat_hits.json
python snippets/ch06/bench.py --url http://127.0.0.1:8301 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 16 --concurrency 1 --repeats 3 --out runs/ch07/vllm/c1.json
python snippets/ch06/bench.py --url http://127.0.0.1:8301 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 32 --concurrency 4 --repeats 3 --out runs/ch07/vllm/c4.json
python snippets/ch06/bench.py --url http://127.0.0.1:8301 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 128 --concurrency 16 --repeats 3 --out runs/ch07/vllm/c16.json
python snippets/ch06/bench.py --url http://127.0.0.1:8301 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 256 --concurrency 64 --repeats 3 --out runs/ch07/vllm/c64.json
python snippets/ch06/serve.py stop --name vllm
python snippets/ch07/collect.py runs/ch07/vllm
# --8<-- [end:vllm-gpu]

# --8<-- [start:sglang-sync-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
python snippets/ch06/serve.py start --name sglang-sync --engine sglang --model runs/ch07/model-1b --device cuda --port 8302 -- --context-length 4096 --mem-fraction-static 0.85 --chunked-prefill-size 8192 --cuda-graph-max-bs-decode 128 --schedule-policy lpm --enable-metrics --grammar-backend xgrammar --constrained-json-disable-any-whitespace --sampling-backend pytorch --cuda-graph-backend-prefill=disabled --disable-overlap-schedule
python snippets/ch06/bench.py --url http://127.0.0.1:8302 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 16 --concurrency 1 --repeats 3 --out runs/ch07/sglang-sync/c1.json
python snippets/ch06/bench.py --url http://127.0.0.1:8302 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 128 --concurrency 16 --repeats 3 --out runs/ch07/sglang-sync/c16.json
python snippets/ch06/serve.py stop --name sglang-sync
python snippets/ch07/collect.py runs/ch07/sglang-sync
# --8<-- [end:sglang-sync-gpu]

# --8<-- [start:vllm-sync-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
python snippets/ch06/serve.py start --name vllm-sync --model runs/ch07/model-1b --device cuda --port 8303 -- --max-model-len 4096 --gpu-memory-utilization 0.85 --max-num-batched-tokens 8192 --no-async-scheduling
python snippets/ch06/bench.py --url http://127.0.0.1:8303 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 16 --concurrency 1 --repeats 3 --out runs/ch07/vllm-sync/c1.json
python snippets/ch06/bench.py --url http://127.0.0.1:8303 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 128 --concurrency 16 --repeats 3 --out runs/ch07/vllm-sync/c16.json
python snippets/ch06/serve.py stop --name vllm-sync
python snippets/ch07/collect.py runs/ch07/vllm-sync
# --8<-- [end:vllm-sync-gpu]

# --8<-- [start:pd-disagg-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
UCX_PROTO_INFO=y VLLM_NIXL_SIDE_CHANNEL_PORT=5601 python snippets/ch06/serve.py start --name prefill --model runs/ch07/model-1b --device cuda --gpus 0 --port 8201 --no-wait -- --max-model-len 4096 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.85 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
UCX_PROTO_INFO=y VLLM_NIXL_SIDE_CHANNEL_PORT=5602 python snippets/ch06/serve.py start --name decode --after prefill --model runs/ch07/model-1b --device cuda --gpus 1 --port 8202 --no-wait -- --max-model-len 4096 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.85 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
python snippets/ch06/serve.py wait --name prefill --name decode
python snippets/ch06/serve.py start --name proxy --engine script --model runs/ch07/model-1b --port 8200 -- snippets/ch07/pd_proxy.py --prefill http://127.0.0.1:8201 --decode http://127.0.0.1:8202
python snippets/ch06/bench.py --url http://127.0.0.1:8200 --dataset mixed --input-len 256 --long-len 3072 --long-share 0.3 --output-len 512 --ignore-eos --num-prompts 128 --concurrency 32 --repeats 3 --out runs/ch07/disagg/bench.json
python snippets/ch07/kv_transfer.py --model runs/ch07/model-1b --prefill http://127.0.0.1:8201 --decode http://127.0.0.1:8202 --out runs/ch07/disagg/transfer.json
grep -m1 -A6 "remote memory read by ucp_get" runs/ch06/servers/decode.log
python snippets/ch06/serve.py stop --name proxy --name decode --name prefill
python snippets/ch07/collect.py runs/ch07/disagg
# --8<-- [end:pd-disagg-gpu]

# --8<-- [start:pd-1gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
UCX_PROTO_INFO=y VLLM_NIXL_SIDE_CHANNEL_PORT=5611 python snippets/ch06/serve.py start --name prefill --model runs/ch07/model-1b --device cuda --gpus 0 --port 8231 --no-wait -- --max-model-len 4096 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.3 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
UCX_PROTO_INFO=y VLLM_NIXL_SIDE_CHANNEL_PORT=5612 python snippets/ch06/serve.py start --name decode --after prefill --model runs/ch07/model-1b --device cuda --gpus 0 --port 8232 --no-wait -- --max-model-len 4096 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.3 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
python snippets/ch06/serve.py wait --name prefill --name decode
python snippets/ch06/serve.py start --name proxy --engine script --model runs/ch07/model-1b --port 8230 -- snippets/ch07/pd_proxy.py --prefill http://127.0.0.1:8231 --decode http://127.0.0.1:8232
python snippets/ch06/bench.py --url http://127.0.0.1:8230 --dataset mixed --input-len 256 --long-len 3072 --long-share 0.3 --output-len 512 --ignore-eos --num-prompts 64 --concurrency 16 --repeats 3 --out runs/ch07/disagg-1gpu/bench.json
python snippets/ch07/kv_transfer.py --model runs/ch07/model-1b --prefill http://127.0.0.1:8231 --decode http://127.0.0.1:8232 --out runs/ch07/disagg-1gpu/transfer.json
grep -m1 -A1 "remote memory read by ucp_get" runs/ch06/servers/decode.log
python snippets/ch06/serve.py stop --name proxy --name decode --name prefill
python snippets/ch07/collect.py runs/ch07/disagg-1gpu
# --8<-- [end:pd-1gpu]

# --8<-- [start:pd-colocated-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --out runs/ch07/model-1b
python snippets/ch06/serve.py start --name colocated --model runs/ch07/model-1b --device cuda --gpus 0,1 --port 8210 -- --data-parallel-size 2 --max-model-len 4096 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.85
python snippets/ch06/bench.py --url http://127.0.0.1:8210 --dataset mixed --input-len 256 --long-len 3072 --long-share 0.3 --output-len 512 --ignore-eos --num-prompts 128 --concurrency 32 --repeats 3 --out runs/ch07/colocated/bench.json
python snippets/ch06/serve.py stop --name colocated
python snippets/ch07/collect.py runs/ch07/colocated
# --8<-- [end:pd-colocated-gpu]

# --8<-- [start:moe-tp-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --n-layer 1 --out runs/ch07/tokenizer-1b
python snippets/ch07/make_moe.py --preset gpu --device cuda --tokenizer runs/ch07/tokenizer-1b --out runs/ch07/moe-gpu
python snippets/ch07/moe_routing.py --model runs/ch07/moe-gpu --device cuda --ep-size 2 --tokens 65536 --out runs/ch07/moe-tp/routing.json
python snippets/ch06/serve.py start --name moe --model runs/ch07/moe-gpu --device cuda --gpus 0,1 --port 8220 -- --tensor-parallel-size 2 --max-model-len 4096 --gpu-memory-utilization 0.85
python snippets/ch06/bench.py --url http://127.0.0.1:8220 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 256 --concurrency 64 --repeats 3 --out runs/ch07/moe-tp/bench.json
python snippets/ch06/serve.py stop --name moe
python snippets/ch07/collect.py runs/ch07/moe-tp
# --8<-- [end:moe-tp-gpu]

# --8<-- [start:moe-ep-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --n-layer 1 --out runs/ch07/tokenizer-1b
python snippets/ch07/make_moe.py --preset gpu --device cuda --tokenizer runs/ch07/tokenizer-1b --out runs/ch07/moe-gpu
python snippets/ch07/moe_routing.py --model runs/ch07/moe-gpu --device cuda --ep-size 2 --tokens 65536 --out runs/ch07/moe-ep/routing.json
python snippets/ch06/serve.py start --name moe --model runs/ch07/moe-gpu --device cuda --gpus 0,1 --port 8221 -- --data-parallel-size 2 --enable-expert-parallel --max-model-len 4096 --gpu-memory-utilization 0.85
python snippets/ch06/bench.py --url http://127.0.0.1:8221 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 256 --concurrency 64 --repeats 3 --out runs/ch07/moe-ep/bench.json
python snippets/ch06/serve.py stop --name moe
python snippets/ch07/collect.py runs/ch07/moe-ep
# --8<-- [end:moe-ep-gpu]

# --8<-- [start:moe-tp-ep-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-1b --n-layer 1 --out runs/ch07/tokenizer-1b
python snippets/ch07/make_moe.py --preset gpu --device cuda --tokenizer runs/ch07/tokenizer-1b --out runs/ch07/moe-gpu
python snippets/ch07/moe_routing.py --model runs/ch07/moe-gpu --device cuda --ep-size 2 --tokens 65536 --out runs/ch07/moe-tp-ep/routing.json
python snippets/ch06/serve.py start --name moe --model runs/ch07/moe-gpu --device cuda --gpus 0,1 --port 8222 -- --tensor-parallel-size 2 --enable-expert-parallel --max-model-len 4096 --gpu-memory-utilization 0.85
python snippets/ch06/bench.py --url http://127.0.0.1:8222 --dataset random --input-len 512 --output-len 128 --ignore-eos --num-prompts 256 --concurrency 64 --repeats 3 --out runs/ch07/moe-tp-ep/bench.json
python snippets/ch06/serve.py stop --name moe
python snippets/ch07/collect.py runs/ch07/moe-tp-ep
# --8<-- [end:moe-tp-ep-gpu]
