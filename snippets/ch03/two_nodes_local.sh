#!/usr/bin/env bash
# Two torchrun agents on this machine play two nodes: each starts one worker, and they
# meet through the c10d rendezvous exactly as two servers would, only on 127.0.0.1.
# Arguments after the script go to train_ddp.py.
#
#     bash snippets/ch03/two_nodes_local.sh
#     bash snippets/ch03/two_nodes_local.sh --steps 40
#
# On real nodes, run the same torchrun line once on each node, with the first node's
# address as the endpoint (commands.sh:multinode, train.sbatch).
set -euo pipefail

mkdir -p runs/ch03
# A free port for the rendezvous, so two of these runs on one machine do not collide.
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
# Whatever happens, leave no agent behind.
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# Both "nodes" share this machine's cores: one thread per worker keeps them from fighting.
export OMP_NUM_THREADS=1
for node in 0 1; do
    # timeout: an agent whose partner never arrives gives up instead of waiting for the
    # rendezvous's own 10-minute limit.
    # --8<-- [start:agent]
    timeout --kill-after 10 120 torchrun --nnodes 2 --nproc-per-node 1 \
        --rdzv-backend c10d --rdzv-endpoint "127.0.0.1:$port" --rdzv-id two-nodes-local \
        --local-addr 127.0.0.1 \
        snippets/ch03/train_ddp.py "$@" > "runs/ch03/node$node.log" 2>&1 &
    # --8<-- [end:agent]
    pids+=($!)
done

# If one node fails, stop the other at once rather than letting it wait out its timeout.
status=0
for _ in "${pids[@]}"; do
    if ! wait -n; then
        status=1
        kill "${pids[@]}" 2>/dev/null || true
    fi
done

for node in 0 1; do
    echo "--- node $node (runs/ch03/node$node.log)"
    grep -v '^{' "runs/ch03/node$node.log" || true
done
# Global rank 0 prints the summary; it ran on whichever node the rendezvous made first.
grep -h '^{' runs/ch03/node0.log runs/ch03/node1.log || echo "no summary line: the run failed" >&2
exit "$status"
