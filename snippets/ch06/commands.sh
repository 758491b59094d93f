# Commands shown in chapter 6. Each named section is one block on the page.
# CPU blocks run with the vLLM CPU environment (.venv-vllm); GPU blocks with a Python that
# has vLLM for CUDA installed.

# --8<-- [start:setup]
make setup-vllm
.venv-vllm/bin/python -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
# --8<-- [end:setup]

# --8<-- [start:train-cpu]
.venv-vllm/bin/python snippets/ch06/train_model.py --steps 60 --batch 8 --max-chars 1500000
# --8<-- [end:train-cpu]

# --8<-- [start:train-draft-cpu]
.venv-vllm/bin/python snippets/ch06/train_model.py --preset draft --tokenizer runs/ch06/model --out runs/ch06/draft --steps 60 --batch 8 --max-chars 1500000
# --8<-- [end:train-draft-cpu]

# --8<-- [start:train-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu --out runs/ch06/model-gpu --max-seconds 90
# --8<-- [end:train-gpu]

# --8<-- [start:train-draft-gpu]
python snippets/ch06/train_model.py --device cuda --preset gpu-draft --tokenizer runs/ch06/model-gpu --out runs/ch06/draft-gpu --max-seconds 20
# --8<-- [end:train-draft-gpu]

# --8<-- [start:decode-kv-cpu]
.venv-vllm/bin/python snippets/ch06/decode_kv.py
# --8<-- [end:decode-kv-cpu]

# --8<-- [start:kv-sizing]
python snippets/ch06/kv_sizing.py --context 8192 --gpu-gib 139.8 --utilization 0.92
# --8<-- [end:kv-sizing]

# --8<-- [start:batching-cpu]
.venv-vllm/bin/python snippets/ch06/batching.py
# --8<-- [end:batching-cpu]

# --8<-- [start:serve-cpu]
.venv-vllm/bin/python snippets/ch06/serve.py start --port 8101 -- --max-model-len 512 --enforce-eager --structured-outputs-config '{"backend":"xgrammar","disable_any_whitespace":true}'
.venv-vllm/bin/python snippets/ch06/serve.py log
curl -s -w "\n" http://127.0.0.1:8101/v1/completions -H "Content-Type: application/json" -d '{"model": "runs/ch06/model", "prompt": "def main(", "max_tokens": 24, "temperature": 0.7, "seed": 0}'
.venv-vllm/bin/python snippets/ch06/client.py --url http://127.0.0.1:8101
curl -s http://127.0.0.1:8101/metrics -o runs/ch06/metrics.txt
grep -E "^vllm:(num_requests_running|kv_cache_usage_perc|prefix_cache_(queries|hits)_total)" runs/ch06/metrics.txt
.venv-vllm/bin/python snippets/ch06/serve.py stop
# --8<-- [end:serve-cpu]

# --8<-- [start:offline-cpu]
.venv-vllm/bin/python snippets/ch06/offline.py
# --8<-- [end:offline-cpu]

# --8<-- [start:bench-cpu]
.venv-vllm/bin/python snippets/ch06/serve.py start --port 8102 -- --max-model-len 512 --enforce-eager
.venv-vllm/bin/python snippets/ch06/bench.py --url http://127.0.0.1:8102 --dataset random --input-len 128 --output-len 32 --ignore-eos --num-prompts 32 --concurrency 4 --label ours --out runs/ch06/bench/ours.json
.venv-vllm/bin/python snippets/ch06/vllm_bench.py --base-url http://127.0.0.1:8102 --model runs/ch06/model --dataset-name random --random-input-len 128 --random-output-len 32 --ignore-eos --num-prompts 32 --max-concurrency 4 --save-result --result-dir runs/ch06/bench --result-filename vllm-bench.json
.venv-vllm/bin/python snippets/ch06/serve.py stop
.venv-vllm/bin/python snippets/ch06/report.py runs/ch06/bench/ours.json runs/ch06/bench/vllm-bench.json --check vllm-bench:ours
# --8<-- [end:bench-cpu]

# --8<-- [start:bench-down]
.venv-vllm/bin/python snippets/ch06/bench.py --url http://127.0.0.1:8199 --max-retries 3
# --8<-- [end:bench-down]

# --8<-- [start:serve-too-many-gpus]
.venv-vllm/bin/python snippets/ch06/serve.py start --device cuda -- --tensor-parallel-size 2
# --8<-- [end:serve-too-many-gpus]

# --8<-- [start:spec-cpu]
.venv-vllm/bin/python snippets/ch06/speculative.py
# --8<-- [end:spec-cpu]

# --8<-- [start:serve-gpu]
python snippets/ch06/serve.py start --device cuda --name base --gpus 0 --port 8201 --model runs/ch06/model-gpu --no-wait -- --max-model-len 4096 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256
python snippets/ch06/serve.py start --device cuda --name noprefix --gpus 0 --port 8202 --model runs/ch06/model-gpu --no-wait -- --max-model-len 4096 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --no-enable-prefix-caching
python snippets/ch06/serve.py start --device cuda --name spec --gpus 0 --port 8203 --model runs/ch06/model-gpu --no-wait -- --max-model-len 4096 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --speculative-config '{"method":"draft_model","model":"runs/ch06/draft-gpu","num_speculative_tokens":4}'
python snippets/ch06/serve.py wait --name base --name noprefix --name spec
python snippets/ch06/serve.py log --name base
python snippets/ch06/client.py --url http://127.0.0.1:8201 --samples 3
python snippets/ch06/bench.py --url http://127.0.0.1:8201 --input-len 512 --output-len 128 --ignore-eos --concurrency 1,16,64,256,1024 --num-prompts 1024 --label c --out runs/ch06/gpu/c.json
python snippets/ch06/vllm_bench.py --base-url http://127.0.0.1:8201 --model runs/ch06/model-gpu --dataset-name random --random-input-len 512 --random-output-len 128 --ignore-eos --num-prompts 64 --max-concurrency 16 --save-result --result-dir runs/ch06/gpu --result-filename vllm-bench-c16.json
python snippets/ch06/vllm_bench.py --base-url http://127.0.0.1:8201 --model runs/ch06/model-gpu --dataset-name random --random-input-len 512 --random-output-len 128 --ignore-eos --num-prompts 256 --max-concurrency 64 --save-result --result-dir runs/ch06/gpu --result-filename vllm-bench-c64.json
python snippets/ch06/bench.py --url http://127.0.0.1:8201 --dataset shared-prefix --prefix-len 2048 --input-len 64 --output-len 64 --ignore-eos --concurrency 64 --num-prompts 256 --repeats 3 --label prefix-on --out runs/ch06/gpu/prefix-on.json
python snippets/ch06/bench.py --url http://127.0.0.1:8202 --dataset shared-prefix --prefix-len 2048 --input-len 64 --output-len 64 --ignore-eos --concurrency 64 --num-prompts 256 --repeats 3 --label prefix-off --out runs/ch06/gpu/prefix-off.json
python snippets/ch06/bench.py --url http://127.0.0.1:8201 --dataset code --input-len 256 --output-len 128 --ignore-eos --concurrency 1 --num-prompts 8 --repeats 3 --label spec-off --out runs/ch06/gpu/spec-off.json
python snippets/ch06/bench.py --url http://127.0.0.1:8203 --dataset code --input-len 256 --output-len 128 --ignore-eos --concurrency 1 --num-prompts 8 --repeats 3 --label spec-on --out runs/ch06/gpu/spec-on.json
python snippets/ch06/serve.py stop --all
python snippets/ch06/report.py runs/ch06/gpu/c1.json runs/ch06/gpu/c16.json runs/ch06/gpu/c64.json runs/ch06/gpu/c256.json runs/ch06/gpu/c1024.json runs/ch06/gpu/prefix-on.json runs/ch06/gpu/prefix-off.json runs/ch06/gpu/spec-off.json runs/ch06/gpu/spec-on.json runs/ch06/gpu/vllm-bench-c16.json runs/ch06/gpu/vllm-bench-c64.json --sweep c --check vllm-bench-c16:c16 --within 0.10
# --8<-- [end:serve-gpu]

# --8<-- [start:knobs-gpu]
python snippets/ch06/train_model.py --preset gpu-1b --config-only --out runs/ch06/model-1b
python snippets/ch06/serve.py start --device cuda --name chunked --gpus 0 --port 8211 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 8192 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --max-num-batched-tokens 2048
python snippets/ch06/serve.py start --device cuda --name unchunked --gpus 0 --port 8212 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 8192 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --max-num-batched-tokens 8192 --no-enable-chunked-prefill
python snippets/ch06/serve.py start --device cuda --name bf16 --gpus 0 --port 8213 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 8192 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256
python snippets/ch06/serve.py start --device cuda --name fp8 --gpus 0 --port 8214 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 8192 --gpu-memory-utilization 0.3 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --quantization fp8
python snippets/ch06/serve.py wait --name chunked --name unchunked --name bf16 --name fp8
python snippets/ch06/serve.py log --name fp8
python snippets/ch06/bench.py --url http://127.0.0.1:8211 --dataset mixed --input-len 128 --long-len 6144 --long-share 0.1 --output-len 128 --ignore-eos --request-rate 8 --concurrency 256 --num-prompts 64 --repeats 3 --itl-slo-ms 20 --label chunked --out runs/ch06/gpu/chunked.json
python snippets/ch06/bench.py --url http://127.0.0.1:8212 --dataset mixed --input-len 128 --long-len 6144 --long-share 0.1 --output-len 128 --ignore-eos --request-rate 8 --concurrency 256 --num-prompts 64 --repeats 3 --itl-slo-ms 20 --label unchunked --out runs/ch06/gpu/unchunked.json
python snippets/ch06/bench.py --url http://127.0.0.1:8213 --input-len 1024 --output-len 256 --ignore-eos --concurrency 128 --num-prompts 384 --repeats 3 --label bf16 --out runs/ch06/gpu/bf16.json
python snippets/ch06/bench.py --url http://127.0.0.1:8214 --input-len 1024 --output-len 256 --ignore-eos --concurrency 128 --num-prompts 384 --repeats 3 --label fp8 --out runs/ch06/gpu/fp8.json
python snippets/ch06/serve.py stop --all
python snippets/ch06/report.py runs/ch06/gpu/chunked.json runs/ch06/gpu/unchunked.json runs/ch06/gpu/bf16.json runs/ch06/gpu/fp8.json
# --8<-- [end:knobs-gpu]

# --8<-- [start:tp-dp-gpu]
python snippets/ch06/train_model.py --preset gpu-1b --config-only --out runs/ch06/model-1b
python snippets/ch06/serve.py start --device cuda --name tp2 --gpus 0,1 --port 8221 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --tensor-parallel-size 2
python snippets/ch06/serve.py start --device cuda --name dp2 --gpus 0,1 --port 8222 --model runs/ch06/model-1b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --data-parallel-size 2
python snippets/ch06/serve.py wait --name tp2 --name dp2
python snippets/ch06/bench.py --url http://127.0.0.1:8221 --input-len 512 --output-len 128 --ignore-eos --concurrency 1,256 --num-prompts 768 --repeats 3 --label tp2-c --out runs/ch06/gpu/tp2-c.json
python snippets/ch06/bench.py --url http://127.0.0.1:8222 --input-len 512 --output-len 128 --ignore-eos --concurrency 1,256 --num-prompts 768 --repeats 3 --label dp2-c --out runs/ch06/gpu/dp2-c.json
python snippets/ch06/serve.py stop --all
python snippets/ch06/report.py runs/ch06/gpu/tp2-c1.json runs/ch06/gpu/dp2-c1.json runs/ch06/gpu/tp2-c256.json runs/ch06/gpu/dp2-c256.json
# --8<-- [end:tp-dp-gpu]

# --8<-- [start:tp-pp-4gpu]
python snippets/ch06/train_model.py --preset gpu-1b --n-layer 80 --d-model 8192 --n-head 128 --n-kv-head 8 --d-ff 28672 --config-only --out runs/ch06/model-70b
python snippets/ch06/serve.py start --device cuda --name tp4 --gpus 0,1,2,3 --port 8231 --model runs/ch06/model-70b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --tensor-parallel-size 4
python snippets/ch06/serve.py start --device cuda --name pp4 --gpus 0,1,2,3 --port 8232 --model runs/ch06/model-70b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --pipeline-parallel-size 4
python snippets/ch06/serve.py wait --name tp4 --name pp4
python snippets/ch06/serve.py log --name tp4
python snippets/ch06/bench.py --url http://127.0.0.1:8231 --input-len 256 --output-len 64 --ignore-eos --concurrency 1,16,128 --num-prompts 256 --repeats 3 --label tp4-c --out runs/ch06/gpu/tp4-c.json
python snippets/ch06/bench.py --url http://127.0.0.1:8232 --input-len 256 --output-len 64 --ignore-eos --concurrency 1,16,128 --num-prompts 256 --repeats 3 --label pp4-c --out runs/ch06/gpu/pp4-c.json
python snippets/ch06/serve.py stop --all
python snippets/ch06/report.py runs/ch06/gpu/tp4-c1.json runs/ch06/gpu/tp4-c16.json runs/ch06/gpu/tp4-c128.json runs/ch06/gpu/pp4-c1.json runs/ch06/gpu/pp4-c16.json runs/ch06/gpu/pp4-c128.json
# --8<-- [end:tp-pp-4gpu]

# --8<-- [start:tp-pp-8gpu]
python snippets/ch06/train_model.py --preset gpu-1b --n-layer 80 --d-model 8192 --n-head 128 --n-kv-head 8 --d-ff 28672 --config-only --out runs/ch06/model-70b
python snippets/ch06/serve.py start --device cuda --name tp8 --gpus 0,1,2,3,4,5,6,7 --port 8241 --model runs/ch06/model-70b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --tensor-parallel-size 8
python snippets/ch06/serve.py start --device cuda --name pp8 --gpus 0,1,2,3,4,5,6,7 --port 8242 --model runs/ch06/model-70b --no-wait -- --load-format dummy --max-model-len 4096 --gpu-memory-utilization 0.45 --kv-cache-memory-bytes 21474836480 --compilation-config '{"cudagraph_capture_sizes":[1,2,4,8,16,32,64,128,256]}' --max-num-seqs 256 --pipeline-parallel-size 8
python snippets/ch06/serve.py wait --name tp8 --name pp8
python snippets/ch06/serve.py log --name tp8
python snippets/ch06/bench.py --url http://127.0.0.1:8241 --input-len 256 --output-len 64 --ignore-eos --concurrency 1,16,128 --num-prompts 256 --repeats 3 --label tp8-c --out runs/ch06/gpu/tp8-c.json
python snippets/ch06/bench.py --url http://127.0.0.1:8242 --input-len 256 --output-len 64 --ignore-eos --concurrency 1,16,128 --num-prompts 256 --repeats 3 --label pp8-c --out runs/ch06/gpu/pp8-c.json
python snippets/ch06/serve.py stop --all
python snippets/ch06/report.py runs/ch06/gpu/tp8-c1.json runs/ch06/gpu/tp8-c16.json runs/ch06/gpu/tp8-c128.json runs/ch06/gpu/pp8-c1.json runs/ch06/gpu/pp8-c16.json runs/ch06/gpu/pp8-c128.json
# --8<-- [end:tp-pp-8gpu]
