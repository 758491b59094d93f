"""Reading chapter 8's manifests: YAML documents, the pods each workload makes, torchrun flags.

The checks (check_semantics.py) and the local run (run_job_locally.py) share these few
helpers, so both read a manifest the same way.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# torchrun flags that take no value; every other --flag takes one.
TORCHRUN_SWITCHES = {"--standalone", "--no-python", "--run-path", "--module", "-m"}
# Where the Job controller puts a pod's completion index, for the downward API.
INDEX_FIELDS = {"metadata.annotations['batch.kubernetes.io/job-completion-index']",
                "metadata.labels['batch.kubernetes.io/job-completion-index']"}
GPU_DEVICE_CLASS = "gpu.nvidia.com"  # the device class of NVIDIA's DRA driver for GPUs


def fail(msg):
    sys.exit(f"error: {msg}")


@dataclass
class Doc:
    path: str
    obj: dict

    @property
    def kind(self):
        return self.obj.get("kind", "")

    @property
    def name(self):
        return self.obj.get("metadata", {}).get("name", "")

    @property
    def namespace(self):
        return self.obj.get("metadata", {}).get("namespace", "")

    def where(self):
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.path}: {self.kind} {ns}{self.name}"


def load(paths):
    """Every document of every YAML file under the given files and folders."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in {".yaml", ".yml"})
        elif p.is_file():
            files.append(p)
        else:
            fail(f"{p} does not exist")
    docs = []
    for f in files:
        try:
            objs = list(yaml.load_all(f.read_text(), Loader=Loader))
        except yaml.YAMLError as exc:
            fail(f"{f}: not valid YAML: {str(exc).splitlines()[0]}")
        for obj in objs:
            if obj is None:
                continue
            if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
                fail(f"{f}: a document without apiVersion and kind")
            docs.append(Doc(str(f), obj))
    return docs


@dataclass
class Workload:
    """Pods that one object makes: how many, from which template, found where."""

    doc: Doc
    pods: int
    template: dict  # a PodTemplateSpec: metadata and spec
    at: str  # the field path of the template, for messages
    parallelism: int | None = None
    replicas: int = 1
    hostname0: str | None = None  # DNS name of the first pod, if the pods get names
    extra: dict = field(default_factory=dict)


def workloads(docs):
    """The pod templates of Pods, Jobs, JobSets, LeaderWorkerSets and TrainJobs (merged
    with their runtime)."""
    runtimes = {(d.namespace, d.name): d for d in docs if d.kind == "TrainingRuntime"}
    out = []
    for d in docs:
        o, ns = d.obj, d.namespace
        if d.kind == "Pod":
            out.append(Workload(d, 1, {"metadata": o.get("metadata", {}), "spec": o["spec"]}, ""))
        elif d.kind == "Job":
            spec = o["spec"]
            par = spec.get("parallelism", 1)
            tmpl = spec["template"]
            sub = tmpl["spec"].get("subdomain")
            host = (f"{d.name}-0.{sub}.{ns}.svc.cluster.local"
                    if sub and spec.get("completionMode") == "Indexed" else None)
            out.append(Workload(d, par, tmpl, "spec.template", par, 1, host))
        elif d.kind == "JobSet":
            sub = o["spec"].get("network", {}).get("subdomain") or d.name
            dns = o["spec"].get("network", {}).get("enableDNSHostnames")
            for i, rj in enumerate(o["spec"]["replicatedJobs"]):
                job = rj["template"]["spec"]
                reps, par = rj.get("replicas", 1), job.get("parallelism", 1)
                host = f"{d.name}-{rj['name']}-0-0.{sub}.{ns}.svc.cluster.local" if dns else None
                out.append(Workload(d, reps * par, job["template"],
                                    f"spec.replicatedJobs[{i}].template.spec.template",
                                    par, reps, host))
        elif d.kind == "LeaderWorkerSet":
            lwt, reps = o["spec"]["leaderWorkerTemplate"], o["spec"].get("replicas", 1)
            at = "spec.leaderWorkerTemplate"
            worker = lwt["workerTemplate"]
            out.append(Workload(d, reps, lwt.get("leaderTemplate", worker),
                                f"{at}.leaderTemplate", 1, reps))
            out.append(Workload(d, reps * (lwt.get("size", 1) - 1), worker,
                                f"{at}.workerTemplate", lwt.get("size", 1) - 1, reps))
        elif d.kind == "TrainJob":
            out.append(_trainjob(d, runtimes))
    return out


def _trainjob(d, runtimes):
    """A TrainJob's trainer pods: its runtime's "node" template with the TrainJob's overrides."""
    ref = d.obj["spec"]["runtimeRef"]
    rt = runtimes.get((d.namespace, ref["name"]))
    if ref.get("kind", "ClusterTrainingRuntime") != "TrainingRuntime" or rt is None:
        fail(f"{d.where()}: spec.runtimeRef: no TrainingRuntime {ref['name']} in namespace "
             f"{d.namespace} among the manifests")
    trainer = d.obj["spec"].get("trainer", {})
    for rj in rt.obj["spec"]["template"]["spec"]["replicatedJobs"]:
        labels = rj["template"].get("metadata", {}).get("labels", {})
        if labels.get("trainer.kubeflow.org/trainjob-ancestor-step") == "trainer":
            tmpl = yaml.load(yaml.dump(rj["template"]["spec"]["template"]), Loader=Loader)
            break
    else:
        fail(f"{rt.where()}: no replicated job labelled trainjob-ancestor-step: trainer")
    node = next((c for c in tmpl["spec"]["containers"] if c["name"] == "node"), None)
    if node is None:
        fail(f"{rt.where()}: the trainer template has no container named node")
    res = trainer.get("resourcesPerNode")
    if res:
        node["resources"] = res
    for key in ("image", "command", "args"):
        if key in trainer:
            node[key] = trainer[key]
    node["env"] = node.get("env", []) + trainer.get("env", [])
    nodes = trainer.get("numNodes", rt.obj["spec"].get("mlPolicy", {}).get("numNodes", 1))
    return Workload(d, nodes, tmpl, "spec.trainer", nodes, 1, None,
                    {"numProcPerNode": trainer.get("numProcPerNode")})


def torchrun(container):
    """(torchrun flags, script, script arguments) of a container that runs torchrun, or None."""
    argv = list(container.get("command", [])) + list(container.get("args", []))
    if not argv or Path(argv[0]).name != "torchrun":
        return None
    return split_torchrun(argv[1:])


def split_torchrun(tokens):
    """torchrun's own flags (--x=y and --x y alike, _ read as -), the script, its arguments."""
    flags, i = {}, 0
    while i < len(tokens) and tokens[i].startswith("-"):
        tok = tokens[i]
        name, eq, value = tok.partition("=")
        name = "--" + name.lstrip("-").replace("_", "-")
        if not eq and name not in TORCHRUN_SWITCHES and i + 1 < len(tokens):
            value, i = tokens[i + 1], i + 1
        flags[name] = value if (eq or name not in TORCHRUN_SWITCHES) else None
        i += 1
    if i == len(tokens):
        return flags, None, []
    return flags, tokens[i], tokens[i + 1:]


def gpus(container, key="limits", claimed=None):
    """GPUs of a container: its nvidia.com/gpu, or, with `claimed` ({claim name: GPUs}
    from claims_gpus), the GPUs of the DRA claims it uses."""
    n = int(container.get("resources", {}).get(key, {}).get("nvidia.com/gpu", 0))
    return n + sum((claimed or {}).get(c["name"], 0)
                   for c in container.get("resources", {}).get("claims", []))


def claims_gpus(spec, templates):
    """{pod claim name: GPUs} for a pod's resourceClaims, from ResourceClaimTemplates
    ({name: Doc} of its namespace) that request devices of NVIDIA's GPU class."""
    out = {}
    for claim in spec.get("resourceClaims", []):
        t = templates.get(claim.get("resourceClaimTemplateName"))
        if t is None:
            continue
        for r in t.obj["spec"]["spec"].get("devices", {}).get("requests", []):
            ex = r.get("exactly", {})
            if ex.get("deviceClassName") == GPU_DEVICE_CLASS:
                out[claim["name"]] = out.get(claim["name"], 0) + int(ex.get("count", 1))
    return out


def index_env(container):
    """Names of the container's variables that hold its pod's completion index."""
    return {e["name"] for e in container.get("env", [])
            if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") in INDEX_FIELDS}


SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value):
    """A Kubernetes quantity ("96", "500m", "1536Gi") as a number (bytes for memory)."""
    s = str(value)
    for suffix in sorted(SUFFIX, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * SUFFIX[suffix]
    return float(s)


def pod_requests(spec):
    """What the scheduler reserves for a pod: its containers' requests summed (or limits
    where only limits are set), or the largest init container's, whichever is larger."""
    def of(c):
        res = c.get("resources", {})
        return {**{k: quantity(v) for k, v in res.get("limits", {}).items()},
                **{k: quantity(v) for k, v in res.get("requests", {}).items()}}
    total = {}
    for c in spec.get("containers", []):
        for k, v in of(c).items():
            total[k] = total.get(k, 0) + v
    for c in spec.get("initContainers", []):
        for k, v in of(c).items():
            total[k] = max(total.get(k, 0), v)
    return total
