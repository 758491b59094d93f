"""Chapter 8: each mistake a manifest can make fails its check with one line naming the
file and the field, and the chapter's own manifests pass.

Every case copies the chapter's manifests, makes one mistake in the copy, and runs the
check a reader would run (the schema validator, the semantic check or the local runner).
"""

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from book.registry import REPO
from test_bad_input import _assert_one_line_error

CH08 = REPO / "snippets" / "ch08"
VALIDATE = str(CH08 / "validate_manifests.py")
SEMANTICS = str(CH08 / "check_semantics.py")
RUN_LOCAL = str(CH08 / "run_job_locally.py")


@pytest.fixture
def manifests(tmp_path):
    """A copy of the chapter's manifests, and a way to change one document in it."""
    d = tmp_path / "ch08"
    d.mkdir()
    for f in CH08.rglob("*.yaml"):
        (d / f.relative_to(CH08)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.relative_to(CH08))

    def edit(name, index, change):
        path = d / name
        docs = list(yaml.safe_load_all(path.read_text()))
        change(docs[index])
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    return d, edit


def run(*argv):
    return subprocess.run([sys.executable, *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def pod(job):
    return job["spec"]["template"]["spec"]


def jobset_pod(js):
    return js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]


def tolerations_in_container(spec):
    spec["containers"][0]["tolerations"] = spec.pop("tolerations")


def test_the_chapters_manifests_pass_both_checks():
    for script in (VALIDATE, SEMANTICS):
        proc = run(script, CH08)
        assert proc.returncode == 0, proc.stderr
        assert not proc.stderr.strip(), proc.stderr


def test_kubernetes_validate_names_a_misplaced_field(manifests):
    d, edit = manifests
    path = edit("train-job.yaml", 1, lambda job: tolerations_in_container(pod(job)))
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "kubernetes-validate"), "--strict",
                           "--kubernetes-version", "1.37", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert re.search(rf"ERROR {re.escape(str(path))} did not validate for resource job/ddp .*"
                     r"spec\.template\.spec\.containers\.0: .*'tolerations' was unexpected",
                     proc.stdout), proc.stdout


SCHEMA_CASES = [
    # (id, file, document index, change, pattern of the one error line)
    ("misplaced-field-job", "train-job.yaml", 1, lambda j: tolerations_in_container(pod(j)),
     r"train-job\.yaml: Job llm-train/ddp: spec\.template\.spec\.containers\.0: "
     r"unknown field 'tolerations'$"),
    ("misplaced-field-jobset", "jobset-fsdp.yaml", 0,
     lambda js: tolerations_in_container(jobset_pod(js)),
     r"jobset-fsdp\.yaml: JobSet llm-train/fsdp: "
     r"spec\.replicatedJobs\.0\.template\.spec\.template\.spec\.containers\.0: "
     r"unknown field 'tolerations'$"),
    ("jobset-wrong-apiversion", "jobset-fsdp.yaml", 0,
     lambda js: js.update(apiVersion="jobset.x-k8s.io/v1alpha1"),
     r"jobset-fsdp\.yaml: JobSet llm-train/fsdp: apiVersion: jobset\.x-k8s\.io/v1alpha1 is "
     r"not served; the JobSet schema has v1alpha2$"),
    ("kueue-v1beta1", "kueue.yaml", 2, lambda cq: cq.update(apiVersion="kueue.x-k8s.io/v1beta1"),
     r"kueue\.yaml: ClusterQueue llm-train: apiVersion: kueue\.x-k8s\.io/v1beta1 is not served"),
    ("custom-resource-without-schema", "gpu-alerts.yaml", 0,
     lambda r: r.update(apiVersion="monitoring.example.com/v1"),
     r"gpu-alerts\.yaml: PrometheusRule gpu-operator/gpu-health: kind: no schema for "
     r"PrometheusRule \(monitoring\.example\.com\)"),
    ("trainjob-wrong-type", "trainjob.yaml", 1,
     lambda tj: tj["spec"]["trainer"].update(numProcPerNode="eight"),
     r"trainjob\.yaml: TrainJob llm-train/ddp: spec\.trainer\.numProcPerNode: 'eight' is not "
     r"of type 'integer'$"),
    ("flavor-misspelled-topology", "kueue.yaml", 1,
     lambda f: f["spec"].update(topology=f["spec"].pop("topologyName")),
     r"kueue\.yaml: ResourceFlavor h200-x8: spec: unknown field 'topology'$"),
    ("lws-misplaced-size", "lws-serving.yaml", 1,
     lambda lws: lws["spec"].update(size=lws["spec"]["leaderWorkerTemplate"].pop("size")),
     r"lws-serving\.yaml: LeaderWorkerSet llm-serve/vllm: spec: unknown field 'size'$"),
    ("dra-count-outside-exactly", "gpu-dra.yaml", 0,
     lambda t: t["spec"]["spec"]["devices"]["requests"][0].update(count=1),
     r"gpu-dra\.yaml: ResourceClaimTemplate llm-train/one-h200: "
     r"spec\.spec\.devices\.requests\.0: unknown field 'count'$"),
]


def _args(job, old, new):
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index(old)] = new


SEMANTIC_CASES = [
    ("parallelism-vs-nnodes", "train-job.yaml", 1,
     lambda j: j["spec"].update(parallelism=3, completions=3),
     r"train-job\.yaml: Job llm-train/ddp: spec\.parallelism: 3 pods but torchrun --nnodes 2$"),
    ("completions-vs-parallelism", "train-job.yaml", 1, lambda j: j["spec"].update(completions=4),
     r"train-job\.yaml: Job llm-train/ddp: spec\.completions: 4 but spec\.parallelism 2"),
    ("gpu-without-toleration", "train-job.yaml", 1, lambda j: pod(j).pop("tolerations"),
     r"train-job\.yaml: Job llm-train/ddp: spec\.template\.spec\.tolerations: requests "
     r"GPUs but does not tolerate the GPU nodes' taint nvidia\.com/gpu=present:NoSchedule$"),
    ("dra-pod-without-toleration", "gpu-dra.yaml", 1, lambda p: p["spec"].pop("tolerations"),
     r"gpu-dra\.yaml: Pod llm-train/gpu-smoke-test-dra: \(pod\)\.spec\.tolerations: requests "
     r"GPUs but does not tolerate"),
    ("dra-template-missing", "gpu-dra.yaml", 1,
     lambda p: p["spec"]["resourceClaims"][0].update(resourceClaimTemplateName="one-h100"),
     r"gpu-dra\.yaml: Pod llm-train/gpu-smoke-test-dra: \(pod\)\.spec\.resourceClaims: no "
     r"ResourceClaimTemplate one-h100 in namespace llm-train$"),
    ("nproc-vs-gpus", "train-job.yaml", 1,
     lambda j: _args(j, "--nproc-per-node=8", "--nproc-per-node=4"),
     r"spec\.template\.spec\.containers\[0\]: torchrun --nproc-per-node 4 but the container "
     r"has 8 GPUs$"),
    ("endpoint-not-pod-0", "train-job.yaml", 1,
     lambda j: _args(j, "--rdzv-endpoint=ddp-0.ddp.llm-train.svc.cluster.local:29400",
                     "--rdzv-endpoint=ddp-1.ddp.llm-train.svc.cluster.local:29400"),
     r"torchrun --rdzv-endpoint ddp-1\.ddp\.llm-train\.svc\.cluster\.local:29400: the first "
     r"pod is ddp-0\.ddp\.llm-train\.svc\.cluster\.local$"),
    ("selector-matches-no-pod", "train-job.yaml", 0,
     lambda s: s["spec"]["selector"].update({"app.kubernetes.io/name": "ddp-training"}),
     r"train-job\.yaml: Service llm-train/ddp: spec\.selector: .*ddp-training.* matches no pod "
     r"template in namespace llm-train$"),
    ("queue-does-not-exist", "train-job.yaml", 1,
     lambda j: j["metadata"]["labels"].update({"kueue.x-k8s.io/queue-name": "trainning"}),
     r"train-job\.yaml: Job llm-train/ddp: metadata\.labels\.kueue\.x-k8s\.io/queue-name: no "
     r"LocalQueue trainning in namespace llm-train$"),
    ("request-bigger-than-node", "train-job.yaml", 1,
     lambda j: [pod(j)["containers"][0]["resources"][k].update(cpu="224")
                for k in ("requests", "limits")],
     r"train-job\.yaml: Job llm-train/ddp: spec\.template\.spec\.containers: requests cpu 224, "
     r"more than the 200 a node of capacity\.py leaves for pods$"),
    ("topology-level-unknown", "train-job.yaml", 1,
     lambda j: j["spec"]["template"]["metadata"]["annotations"].update(
         {"kueue.x-k8s.io/podset-preferred-topology": "network.topology.nvidia.com/rack"}),
     r"train-job\.yaml: Job llm-train/ddp: spec\.template\.metadata\.annotations\."
     r"kueue\.x-k8s\.io/podset-preferred-topology: network\.topology\.nvidia\.com/rack is not a "
     r"level of the topology of flavor h200-x8$"),
    ("workload-priority-missing", "train-job.yaml", 1,
     lambda j: j["metadata"]["labels"].update({"kueue.x-k8s.io/priority-class": "urgent"}),
     r"train-job\.yaml: Job llm-train/ddp: metadata\.labels\.kueue\.x-k8s\.io/priority-class: "
     r"no WorkloadPriorityClass urgent$"),
    ("static-rendezvous-without-rank", "train-job-rdma.yaml", 1,
     lambda j: pod(j)["containers"][0]["env"].pop(0),
     r"train-job-rdma\.yaml: Job llm-train-rdma/ddp: spec\.template\.spec\.containers\[0\]\.env: "
     r"a static rendezvous needs each pod's rank: set PET_NODE_RANK from the completion index$"),
    ("master-addr-not-pod-0", "train-job-rdma.yaml", 1,
     lambda j: _args(j, "--master-addr=ddp-0.ddp.llm-train-rdma.svc.cluster.local",
                     "--master-addr=ddp-0.ddp.llm-train.svc.cluster.local"),
     r"torchrun --master-addr ddp-0\.ddp\.llm-train\.svc\.cluster\.local: the first pod is "
     r"ddp-0\.ddp\.llm-train-rdma\.svc\.cluster\.local$"),
    ("restricted-namespace-host-network", "train-job.yaml", 1,
     lambda j: pod(j).update(hostNetwork=True),
     r"train-job\.yaml: Job llm-train/ddp: spec\.template\.spec\.hostNetwork: not allowed at "
     r"restricted$"),
    ("jobset-nnodes", "jobset-fsdp.yaml", 0,
     lambda js: js["spec"]["replicatedJobs"][0]["template"]["spec"].update(parallelism=4,
                                                                           completions=4),
     r"jobset-fsdp\.yaml: JobSet llm-train/fsdp: spec\.replicatedJobs\[0\]\.template\.spec\."
     r"template: 4 pods but torchrun --nnodes 2$"),
    ("trainjob-procs-vs-gpus", "trainjob.yaml", 1,
     lambda tj: tj["spec"]["trainer"].update(numProcPerNode=4),
     r"trainjob\.yaml: TrainJob llm-train/ddp: spec\.trainer\.numProcPerNode: 4 but 8 GPUs per "
     r"node$"),
]


MISTAKES = [(VALIDATE, *c) for c in SCHEMA_CASES] + [(SEMANTICS, *c) for c in SEMANTIC_CASES]


@pytest.mark.parametrize("tool, name, index, change, pattern", [(c[0], *c[2:]) for c in MISTAKES],
                         ids=[c[1] for c in MISTAKES])
def test_a_mistake_is_one_error_naming_file_and_field(manifests, tool, name, index, change, pattern):
    """Schema mistakes (the validator) and semantic ones (check_semantics.py): one line each."""
    d, edit = manifests
    edit(name, index, change)
    _assert_one_line_error(run(tool, d), r"^error: .*" + pattern)


def test_an_rdma_resource_no_plugin_declares_fails_every_pod_that_asks_for_it(manifests):
    d, edit = manifests
    edit("rdma-shared-device-plugin.yaml", 0, lambda cm: cm["data"].update(
        {"config.json": cm["data"]["config.json"].replace("hca_shared_devices_a", "hca_b")}))
    proc = run(SEMANTICS, d)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 2, proc.stderr
    for name in ("fabric-test.yaml: Job llm-train-rdma/fabric-test", "train-job-rdma.yaml: Job "
                 "llm-train-rdma/ddp"):
        assert any(name in ln and "requests rdma/hca_shared_devices_a, which no rdma-devices "
                   "ConfigMap of the RDMA shared device plugin declares" in ln for ln in lines)


def _differences(a, b, at=""):
    """Dotted paths where two pod templates differ; a container is compared field by field."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = set()
        for k in set(a) | set(b):
            out |= _differences(a.get(k), b.get(k), f"{at}.{k}" if at else k)
        return out
    if at == "spec.containers" and a and b:
        return {f"container.{p}" for p in _differences(a[0], b[0])}
    return set() if a == b else {at}


def _docs(name):
    return [d for d in yaml.safe_load_all((CH08 / name).read_text()) if d]


@pytest.mark.parametrize("name, find, expected", [
    ("jobset-fsdp.yaml",
     lambda docs: docs[0]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"],
     {"metadata.labels.app.kubernetes.io/name", "spec.priorityClassName", "spec.subdomain",
      "container.args"}),
    ("trainjob.yaml",
     lambda docs: docs[0]["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
     ["template"],
     {"metadata.labels.app.kubernetes.io/name", "spec.priorityClassName", "spec.subdomain",
      "container.name", "container.command", "container.args", "container.env",
      "container.ports", "container.resources"}),
    ("train-job-rdma.yaml", lambda docs: docs[1]["spec"]["template"],
     {"metadata.labels.app.kubernetes.io/name", "spec.hostNetwork", "spec.dnsPolicy",
      "spec.securityContext.runAsNonRoot", "spec.securityContext.runAsUser",
      "spec.securityContext.runAsGroup", "spec.securityContext.fsGroup",
      "spec.securityContext.fsGroupChangePolicy", "container.args", "container.env",
      "container.resources.requests.rdma/hca_shared_devices_a",
      "container.resources.limits.rdma/hca_shared_devices_a",
      "container.securityContext.capabilities.add"}),
], ids=["jobset", "training-runtime", "rdma-job"])
def test_variants_differ_from_the_job_only_in_the_lines_the_page_shows(name, find, expected):
    job = _docs("train-job.yaml")[1]["spec"]["template"]
    assert _differences(job, find(_docs(name))) == expected


def test_local_run_refuses_a_command_that_is_not_chapter_3s(manifests, tmp_path):
    d, edit = manifests
    path = edit("train-job.yaml", 1, lambda j: _args(j, "--bucket-cap-mb=256",
                                                      "--bucket-cap-mb=128"))
    proc = run(RUN_LOCAL, path, "--map", "/opt/book=snippets", "--map", f"/ckpt={tmp_path}/pvc",
               "--same-as", "snippets/ch03/commands.sh:multinode")
    _assert_one_line_error(proc, r"^error: .*train-job\.yaml: Job llm-train/ddp: the command "
                                 r"differs from snippets/ch03/commands\.sh:multinode in "
                                 r"--bucket-cap-mb: 256 vs 128$")
    assert not (tmp_path / "pvc").exists(), "a pod started although the command was wrong"


@pytest.mark.parametrize("argv, pattern", [
    (["--map", "ckpt=runs/x"], r"^error: --map takes CONTAINER=LOCAL"),
    (["--map", "/ckpt=runs/x", "--kill-pod", "5"], r"^error: --kill-pod needs .* below its 2 pods$"),
], ids=["relative-map", "kill-pod-out-of-range"])
def test_local_run_bad_arguments(argv, pattern):
    _assert_one_line_error(run(RUN_LOCAL, CH08 / "train-job.yaml", *argv), pattern)
