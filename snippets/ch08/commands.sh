# Commands shown in chapter 8. Each named section is one block on the page.

# --8<-- [start:validate-all]
python snippets/ch08/validate_manifests.py snippets/ch08
# --8<-- [end:validate-all]

# --8<-- [start:policy]
.venv-checkov/bin/checkov --directory snippets/ch08 --framework kubernetes dockerfile --skip-download --compact --quiet
# --8<-- [end:policy]

# --8<-- [start:semantics]
python snippets/ch08/check_semantics.py snippets/ch08
# --8<-- [end:semantics]

# --8<-- [start:semantics-broken]
mkdir -p runs/ch08
sed 's/--nproc-per-node=8/--nproc-per-node=4/' snippets/ch08/train-job.yaml > runs/ch08/train-job-4gpu.yaml
python snippets/ch08/check_semantics.py runs/ch08/train-job-4gpu.yaml snippets/ch08/kueue.yaml snippets/ch08/namespaces.yaml snippets/ch08/priority-classes.yaml snippets/ch08/checkpoints-pvc.yaml
# --8<-- [end:semantics-broken]

# --8<-- [start:capacity]
python snippets/ch08/capacity.py --write-gbps 2 --read-gbps 2 --step-ms 757 --first-steps-ms 3646 --hours-between-restarts 24
# --8<-- [end:capacity]

# --8<-- [start:run-local]
rm -rf runs/ch08/pvc
python snippets/ch08/run_job_locally.py snippets/ch08/train-job.yaml --map /opt/book=snippets --map /ckpt=runs/ch08/pvc --same-as snippets/ch03/commands.sh:multinode --steps 30 --kill-pod 1
# --8<-- [end:run-local]

# --8<-- [start:run-local-rdma]
rm -rf runs/ch08/pvc-rdma
python snippets/ch08/run_job_locally.py snippets/ch08/train-job-rdma.yaml --map /opt/book=snippets --map /ckpt=runs/ch08/pvc-rdma --steps 10
# --8<-- [end:run-local-rdma]

# --8<-- [start:cluster-gpus]
kubectl get nodes -L nvidia.com/gpu.product -L nvidia.com/gpu.count -L nvidia.com/mig.strategy
kubectl describe node -l nvidia.com/gpu.product=NVIDIA-H200
kubectl apply -f snippets/ch08/namespaces.yaml
kubectl apply -f snippets/ch08/gpu-smoke-test.yaml
kubectl wait pod/gpu-smoke-test -n llm-train '--for=jsonpath={.status.phase}=Succeeded' --timeout=10m
kubectl logs pod/gpu-smoke-test -n llm-train
# --8<-- [end:cluster-gpus]

# --8<-- [start:cluster-sharing]
kubectl apply -f snippets/ch08/gpu-operator/gpu-sharing.yaml
kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p '{"spec":{"devicePlugin":{"config":{"name":"gpu-sharing-config"}}}}'
export GPU_NODE=gpu-node-7
kubectl label node $GPU_NODE nvidia.com/device-plugin.config=shared-4
# --8<-- [end:cluster-sharing]

# --8<-- [start:cluster-dra]
kubectl get deviceclasses
kubectl apply -f snippets/ch08/gpu-dra.yaml
kubectl wait pod/gpu-smoke-test-dra -n llm-train '--for=jsonpath={.status.phase}=Succeeded' --timeout=10m
kubectl get resourceclaims -n llm-train
# --8<-- [end:cluster-dra]

# --8<-- [start:cluster-train]
docker build -f snippets/ch08/Dockerfile -t registry.example.com/modern-distributed-ai/trainer:0.1.0 .
docker push registry.example.com/modern-distributed-ai/trainer:0.1.0
kubectl apply -f snippets/ch08/namespaces.yaml -f snippets/ch08/priority-classes.yaml -f snippets/ch08/network-policy.yaml
kubectl apply -f snippets/ch08/kueue.yaml -f snippets/ch08/checkpoints-pvc.yaml -f snippets/ch08/gpu-alerts.yaml
kubectl apply -f snippets/ch08/train-job.yaml
kubectl get workloads.kueue.x-k8s.io -n llm-train
kubectl get pods -n llm-train -l batch.kubernetes.io/job-name=ddp -o wide
kubectl logs -n llm-train -l batch.kubernetes.io/job-name=ddp --prefix --follow
# --8<-- [end:cluster-train]

# --8<-- [start:cluster-fabric]
kubectl apply -f snippets/ch08/rdma-shared-device-plugin.yaml
kubectl get nodes -l nvidia.com/gpu.product=NVIDIA-H200 '-o=custom-columns=NODE:.metadata.name,GPU:.status.allocatable.nvidia\.com/gpu,RDMA:.status.allocatable.rdma/hca_shared_devices_a'
kubectl apply -f snippets/ch08/fabric-test.yaml
kubectl wait job/fabric-test -n llm-train-rdma --for=condition=Complete --timeout=20m
kubectl logs -n llm-train-rdma -l batch.kubernetes.io/job-name=fabric-test,batch.kubernetes.io/job-completion-index=0
kubectl apply -f snippets/ch08/train-job-rdma.yaml
kubectl logs -n llm-train-rdma -l batch.kubernetes.io/job-name=ddp --prefix --follow
# --8<-- [end:cluster-fabric]

# --8<-- [start:cluster-drain]
export GPU_NODE=gpu-node-7
kubectl cordon $GPU_NODE
kubectl drain $GPU_NODE --ignore-daemonsets --delete-emptydir-data --timeout=15m
kubectl uncordon $GPU_NODE
# --8<-- [end:cluster-drain]

# --8<-- [start:cluster-debug]
kubectl describe workloads.kueue.x-k8s.io -n llm-train
kubectl get events -n llm-train --field-selector reason=FailedScheduling
kubectl describe pod -n llm-train -l batch.kubernetes.io/job-name=ddp
kubectl logs -n llm-train -l batch.kubernetes.io/job-name=ddp --prefix --tail=20
# --8<-- [end:cluster-debug]

# --8<-- [start:cluster-lws]
kubectl apply -f snippets/ch08/namespaces.yaml -f snippets/ch08/network-policy.yaml -f snippets/ch08/lws-serving.yaml
kubectl get pods -n llm-serve -l leaderworkerset.sigs.k8s.io/name=vllm -o wide
# --8<-- [end:cluster-lws]
