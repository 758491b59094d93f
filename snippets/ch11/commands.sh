# Commands shown in chapter 11. Each named section is one block on the page.

# --8<-- [start:partition-iid]
python snippets/ch11/partition.py --clients 3 --scheme iid --out runs/ch11/data/iid
# --8<-- [end:partition-iid]

# --8<-- [start:federation]
python snippets/ch11/federation.py --app snippets/ch11/fedapp --data runs/ch11/data/iid --nodes 3 --rounds 3 --drop-node 2 --drop-round 2 --round-timeout 20 --workdir runs/ch11/flwr-drop
# --8<-- [end:federation]

# --8<-- [start:match]
python snippets/ch11/simulate.py --clients 3 --partitions iid --rounds 1 --seeds 1 --match runs/ch11/flwr-drop/result.json
# --8<-- [end:match]

# --8<-- [start:partition-dir]
python snippets/ch11/partition.py --clients 10 --scheme dirichlet --alpha 0.1 --out runs/ch11/data/dir
# --8<-- [end:partition-dir]

# --8<-- [start:strategies]
python snippets/ch11/simulate.py --strategies fedavg fedprox fedadam --partitions iid dirichlet --clients 10 --alpha 0.1 --epochs 5 --rounds 20 --seeds 3 --save-model runs/ch11/model.npz
# --8<-- [end:strategies]

# --8<-- [start:dp]
python snippets/ch11/simulate.py --strategies fedavg --partitions iid --clients 10 --noise 0 0.5 2 --clip 1 --uniform --epochs 2 --rounds 20 --seeds 3
# --8<-- [end:dp]

# --8<-- [start:poison]
python snippets/ch11/simulate.py --strategies fedavg fedmedian krum --partitions iid dirichlet --alpha 0.1 --clients 10 --attack-scale 0 10 --attackers 1 --epochs 2 --rounds 10 --seeds 3
# --8<-- [end:poison]

# --8<-- [start:comm]
python snippets/ch11/comm_math.py --clients 100 --uplink-mbps 20 --busbw-gbps 330 --rank 16 --devices 1000000 --egress-gbps 10 --model-mb 500
# --8<-- [end:comm]

# --8<-- [start:lora]
python snippets/ch11/fed_lora.py --clients logs sums json csv --rounds 3 --local-steps 6 --rank 8
# --8<-- [end:lora]

# --8<-- [start:edge]
python snippets/ch11/edge_onnx.py --model runs/ch11/model.npz --data runs/ch11/data/iid --calib runs/ch11/data/iid/client-0.npz --threads 1
# --8<-- [end:edge]

# --8<-- [start:edge-bad-op]
python snippets/ch11/edge_onnx.py --model runs/ch11/model.npz --data runs/ch11/data/iid --extra-op
# --8<-- [end:edge-bad-op]

# --8<-- [start:edge-llm]
python snippets/ch11/edge_llm.py --preset small --prompt-tokens 32 --new-tokens 32 --repeats 5 --threads 1
# --8<-- [end:edge-llm]

