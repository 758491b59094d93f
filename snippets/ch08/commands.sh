# Commands shown in chapter 8. Each named section is one block on the page.

# --8<-- [start:validate-k8s]
kubernetes-validate --strict --kubernetes-version 1.37 snippets/ch08/*.yaml snippets/ch08/gpu-operator/*.yaml
# --8<-- [end:validate-k8s]

# --8<-- [start:validate-all]
python snippets/ch08/validate_manifests.py snippets/ch08
# --8<-- [end:validate-all]

# --8<-- [start:policy]
.venv-checkov/bin/checkov --directory snippets/ch08 --framework kubernetes dockerfile --skip-download --compact --quiet
# --8<-- [end:policy]

# --8<-- [start:semantics]
python snippets/ch08/check_semantics.py snippets/ch08
# --8<-- [end:semantics]

# --8<-- [start:capacity]
python snippets/ch08/capacity.py
# --8<-- [end:capacity]

# --8<-- [start:run-local]
rm -rf runs/ch08/pvc
python snippets/ch08/run_job_locally.py snippets/ch08/train-job.yaml --map /opt/book=snippets --map /ckpt=runs/ch08/pvc --same-as snippets/ch03/commands.sh:multinode --steps 30 --kill-pod 1
# --8<-- [end:run-local]

# --8<-- [start:cluster-gpus]
kubectl get nodes -L nvidia.com/gpu.product -L nvidia.com/gpu.count -L nvidia.com/mig.strategy
kubectl describe node -l nvidia.com/gpu.product=NVIDIA-H200
# --8<-- [end:cluster-gpus]

# --8<-- [start:cluster-time-slicing]
kubectl apply -f snippets/ch08/gpu-operator/time-slicing.yaml
kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p '{"spec":{"devicePlugin":{"config":{"name":"time-slicing-config"}}}}'
export GPU_NODE=gpu-node-7
kubectl label node $GPU_NODE nvidia.com/device-plugin.config=shared-4
# --8<-- [end:cluster-time-slicing]

# --8<-- [start:cluster-setup]
kubectl apply -f snippets/ch08/namespaces.yaml -f snippets/ch08/priority-classes.yaml -f snippets/ch08/network-policy.yaml
kubectl apply -f snippets/ch08/kueue.yaml -f snippets/ch08/checkpoints-pvc.yaml -f snippets/ch08/gpu-alerts.yaml
# --8<-- [end:cluster-setup]

# --8<-- [start:cluster-smoke]
kubectl apply -f snippets/ch08/gpu-smoke-test.yaml
kubectl wait pod/gpu-smoke-test -n llm-train '--for=jsonpath={.status.phase}=Succeeded' --timeout=10m
kubectl logs pod/gpu-smoke-test -n llm-train
# --8<-- [end:cluster-smoke]

# --8<-- [start:cluster-image]
docker build -f snippets/ch08/Dockerfile -t registry.example.com/modern-distributed-ai/trainer:0.1.0 .
docker push registry.example.com/modern-distributed-ai/trainer:0.1.0
# --8<-- [end:cluster-image]

# --8<-- [start:cluster-train]
kubectl apply -f snippets/ch08/train-job.yaml
kubectl get workloads.kueue.x-k8s.io -n llm-train
kubectl get pods -n llm-train -l app.kubernetes.io/name=ddp-train -o wide
kubectl logs -n llm-train job/ddp --follow
# --8<-- [end:cluster-train]

# --8<-- [start:cluster-jobset]
kubectl apply -f snippets/ch08/jobset-fsdp.yaml
kubectl get jobs -n llm-train -l jobset.sigs.k8s.io/jobset-name=fsdp
# --8<-- [end:cluster-jobset]

# --8<-- [start:cluster-trainjob]
kubectl apply -f snippets/ch08/trainjob.yaml
kubectl get trainjobs.trainer.kubeflow.org -n llm-train
# --8<-- [end:cluster-trainjob]

# --8<-- [start:cluster-rdma]
kubectl apply -f snippets/ch08/train-job-rdma.yaml
kubectl logs -n llm-train-rdma job/ddp
# --8<-- [end:cluster-rdma]

# --8<-- [start:cluster-debug]
kubectl describe workloads.kueue.x-k8s.io -n llm-train
kubectl get events -n llm-train --field-selector reason=FailedScheduling
kubectl describe pod -n llm-train -l app.kubernetes.io/name=ddp-train
kubectl logs -n llm-train -l app.kubernetes.io/name=ddp-train --previous --prefix --tail=20
# --8<-- [end:cluster-debug]
