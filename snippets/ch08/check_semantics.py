"""Check what a schema cannot: that the chapter's manifests agree with each other.

Selectors find the pods they are meant for; an Indexed Job starts as many pods as the
--nnodes its torchrun waits for, and one process per GPU it gets (as nvidia.com/gpu or
through a DRA claim); the rendezvous host is the first pod's DNS name, and a static
rendezvous takes each node's rank from the pod's completion index; every pod fits the
node shape of capacity.py and tolerates its taint; every queue, priority, topology level,
claim, volume and RDMA resource a pod names exists; Kueue can admit each job; every pod
meets its namespace's Pod Security level. Each problem is one line naming file and field.

    python snippets/ch08/check_semantics.py snippets/ch08
"""

import argparse
import json
import sys

import capacity
from manifests import (
    claims_gpus,
    gpus,
    index_env,
    load,
    pod_requests,
    quantity,
    torchrun,
    workloads,
)
from pss import pod_security

TAS = ("kueue.x-k8s.io/podset-required-topology", "kueue.x-k8s.io/podset-preferred-topology")


def tolerates(tolerations, taint):
    for t in tolerations:
        wildcard = not t.get("key") and t.get("operator") == "Exists"
        key_ok = t.get("key") == taint["key"] or wildcard
        value_ok = t.get("operator") == "Exists" or t.get("value") == taint.get("value")
        if key_ok and value_ok and t.get("effect") in (None, "", taint["effect"]):
            return True
    return False


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def index(docs):
    """The objects other objects refer to, by kind and name."""
    by = {}
    for d in docs:
        by.setdefault(d.kind, {})[(d.namespace, d.name)] = d
    rdma = set()
    for cm in by.get("ConfigMap", {}).values():
        if "config.json" in cm.obj.get("data", {}) and cm.name == "rdma-devices":
            for c in json.loads(cm.obj["data"]["config.json"])["configList"]:
                rdma.add(f"{c.get('resourcePrefix', 'rdma')}/{c['resourceName']}")
    return by, rdma


def check_pod(w, by, rdma):
    """Node shape, taints, references and Pod Security of one workload's pod template."""
    d, spec, at, out = w.doc, w.template["spec"], w.at or "(pod)", []
    ns = d.namespace
    templates = {n: t for (tns, n), t in by.get("ResourceClaimTemplate", {}).items() if tns == ns}
    claimed = claims_gpus(spec, templates)
    free, need = capacity.for_pods(), pod_requests(spec)
    for res, amount in need.items():
        if res in free and amount > free[res]:
            out.append(f"{at}.spec.containers: requests {res} {amount:g}, more than the "
                       f"{free[res]:g} a node of capacity.py leaves for pods")
        elif res not in free and res != "ephemeral-storage":
            out.append(f"{at}.spec.containers: requests {res}, which the node shape in "
                       f"capacity.py does not have")
        if res.startswith("rdma/") and res not in rdma:
            out.append(f"{at}.spec.containers: requests {res}, which no rdma-devices "
                       f"ConfigMap of the RDMA shared device plugin declares")
    for i, c in enumerate(spec.get("containers", [])):
        req, lim = gpus(c, "requests"), gpus(c, "limits")
        if req and lim and req != lim:
            out.append(f"{at}.spec.containers[{i}].resources: nvidia.com/gpu requests {req} "
                       f"but limits {lim}; extended resources need both equal")
        for cl in c.get("resources", {}).get("claims", []):
            if cl["name"] not in {r["name"] for r in spec.get("resourceClaims", [])}:
                out.append(f"{at}.spec.containers[{i}].resources.claims: {cl['name']} is not "
                           f"in spec.resourceClaims")
    for r in spec.get("resourceClaims", []):
        name = r.get("resourceClaimTemplateName")
        if name and name not in templates:
            out.append(f"{at}.spec.resourceClaims: no ResourceClaimTemplate {name} in "
                       f"namespace {ns}")
    if need.get("nvidia.com/gpu") or claimed:
        for taint in capacity.TAINTS:
            if not tolerates(spec.get("tolerations", []), taint):
                out.append(f"{at}.spec.tolerations: requests GPUs but does not tolerate the "
                           f"GPU nodes' taint {taint['key']}={taint['value']}:{taint['effect']}")
    for v in spec.get("volumes", []):
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim and (ns, claim) not in by.get("PersistentVolumeClaim", {}):
            out.append(f"{at}.spec.volumes: claim {claim} is not in namespace {ns}")
    pc = spec.get("priorityClassName")
    if pc and not pc.startswith("system-") and ("", pc) not in by.get("PriorityClass", {}):
        out.append(f"{at}.spec.priorityClassName: no PriorityClass {pc}")
    namespace = by.get("Namespace", {}).get(("", ns))
    if namespace is None:
        return out + [f"metadata.namespace: no Namespace {ns}"]
    level = namespace.obj["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
    return out + pod_security(spec, level or "privileged", at)


def check_torchrun(w, by):
    """One agent per pod, one process per GPU, the rendezvous host on the first pod."""
    d, spec, at, out = w.doc, w.template["spec"], w.at or "(pod)", []
    templates = {n: t for (ns, n), t in by.get("ResourceClaimTemplate", {}).items()
                 if ns == d.namespace}
    for i, c in enumerate(spec.get("containers", [])):
        run = torchrun(c)
        if run is None:
            continue
        flags, here = run[0], f"{at}.spec.containers[{i}]"
        if d.kind == "Job":
            js = d.obj["spec"]
            if js.get("completionMode") != "Indexed":
                out.append("spec.completionMode: a torchrun Job must be Indexed")
            if js.get("completions") != js.get("parallelism"):
                out.append(f"spec.completions: {js.get('completions')} but spec.parallelism "
                           f"{js.get('parallelism')}; all pods run at once")
        if "--nnodes" in flags and int(flags["--nnodes"].split(":")[-1]) != w.pods:
            out.append(f"{'spec.parallelism' if d.kind == 'Job' else at}: {w.pods} pods but "
                       f"torchrun --nnodes {flags['--nnodes']}")
        n = gpus(c, claimed=claims_gpus(spec, templates))
        if flags.get("--nproc-per-node") and int(flags["--nproc-per-node"]) != n:
            out.append(f"{here}: torchrun --nproc-per-node {flags['--nproc-per-node']} but the "
                       f"container has {n} GPUs")
        host = flags.get("--rdzv-endpoint", "").rsplit(":", 1)[0]
        static = "--rdzv-endpoint" not in flags and \
            flags.get("--rdzv-backend", "static") == "static"
        if static and d.kind != "TrainJob":  # Trainer sets PET_NODE_RANK itself
            host = flags.get("--master-addr", "")
            if "--node-rank" not in flags and "PET_NODE_RANK" not in index_env(c):
                out.append(f"{here}.env: a static rendezvous needs each pod's rank: set "
                           f"PET_NODE_RANK from the completion index")
        if host and w.hostname0 and host != w.hostname0:
            flag = "--rdzv-endpoint" if "--rdzv-endpoint" in flags else "--master-addr"
            out.append(f"{here}: torchrun {flag} {flags[flag]}: the first pod is {w.hostname0}")
    if d.kind == "TrainJob":
        node = next(c for c in spec["containers"] if c["name"] == "node")
        npn = w.extra.get("numProcPerNode")
        if npn and npn != gpus(node):
            out.append(f"spec.trainer.numProcPerNode: {npn} but {gpus(node)} GPUs per node")
    sub = spec.get("subdomain")
    if d.kind == "Job" and sub:
        svc = by.get("Service", {}).get((d.namespace, sub))
        if svc is None or svc.obj["spec"].get("clusterIP") != "None":
            out.append(f"{at}.spec.subdomain: no headless Service {sub} in {d.namespace}")
    return out


def check_queue(w, by):
    """The job's LocalQueue, ClusterQueue, flavors, priority and topology all line up."""
    d, spec, at, out = w.doc, w.template["spec"], w.at or "(pod)", []
    labels = d.obj["metadata"].get("labels", {})
    wpc = labels.get("kueue.x-k8s.io/priority-class")
    if wpc and ("", wpc) not in by.get("WorkloadPriorityClass", {}):
        out.append(f"metadata.labels.kueue.x-k8s.io/priority-class: no WorkloadPriorityClass "
                   f"{wpc}")
    qname = labels.get("kueue.x-k8s.io/queue-name")
    if not qname:
        return out
    lq = by.get("LocalQueue", {}).get((d.namespace, qname))
    if lq is None:
        return out + [f"metadata.labels.kueue.x-k8s.io/queue-name: no LocalQueue {qname} in "
                      f"namespace {d.namespace}"]
    cq_name = lq.obj["spec"].get("clusterQueue")
    cq = by.get("ClusterQueue", {}).get(("", cq_name))
    if cq is None:
        return out + [f"LocalQueue {qname}: spec.clusterQueue: no ClusterQueue {cq_name}"]
    cq = cq.obj["spec"]
    sel, ns_labels = cq.get("namespaceSelector", {}), {"kubernetes.io/metadata.name": d.namespace}
    if not (selects(sel.get("matchLabels"), ns_labels) and all(
            (ns_labels.get(e["key"]) in e.get("values", [])) == (e["operator"] == "In")
            for e in sel.get("matchExpressions", []))):
        out.append(f"ClusterQueue {cq_name} does not admit namespace {d.namespace} "
                   f"(spec.namespaceSelector)")
    need = pod_requests(spec)
    wanted = [k for k in TAS if k in w.template.get("metadata", {}).get("annotations", {})]
    if len(wanted) > 1:
        out.append(f"{at}.metadata.annotations: at most one of {', '.join(TAS)}")
    for group in cq.get("resourceGroups", []):
        missing = set(need) - set(group["coveredResources"])
        if missing:
            out.append(f"ClusterQueue {cq_name} does not cover {sorted(missing)}: Kueue would "
                       f"never admit it")
        for fl in group["flavors"]:
            flavor = by.get("ResourceFlavor", {}).get(("", fl["name"]))
            if flavor is None:
                out.append(f"ClusterQueue {cq_name}: flavor {fl['name']} does not exist")
                continue
            flavor = flavor.obj["spec"]
            for taint in flavor.get("nodeTaints", []):
                if taint in capacity.TAINTS and (need.get("nvidia.com/gpu") or
                                                 spec.get("resourceClaims")):
                    continue  # check_pod reports a GPU pod that lacks it
                if not tolerates(spec.get("tolerations", []) + flavor.get("tolerations", []),
                                 taint):
                    out.append(f"{at}.spec.tolerations: does not tolerate {taint['key']} of "
                               f"flavor {fl['name']}")
            topo = by.get("Topology", {}).get(("", flavor.get("topologyName")))
            if flavor.get("topologyName") and topo is None:
                out.append(f"ResourceFlavor {fl['name']}: spec.topologyName: no Topology "
                           f"{flavor['topologyName']}")
            levels = {lv["nodeLabel"] for lv in topo.obj["spec"]["levels"]} if topo else set()
            for key in wanted:
                level = w.template["metadata"]["annotations"][key]
                if level not in levels:
                    out.append(f"{at}.metadata.annotations.{key}: {level} is not a level of "
                               f"the topology of flavor {fl['name']}")
            for r in fl["resources"]:
                most = sum(quantity(r.get(k, 0)) for k in ("nominalQuota", "borrowingLimit"))
                if need.get(r["name"], 0) * w.pods > most:
                    out.append(f"needs {r['name']} {need[r['name']] * w.pods:g} for {w.pods} "
                               f"pods, more than ClusterQueue {cq_name} can ever hold ({most:g})")
    return out


def check(docs):
    by, rdma = index(docs)
    loads, problems = workloads(docs), []
    for w in loads:
        found = check_pod(w, by, rdma) + check_torchrun(w, by) + check_queue(w, by)
        problems += [f"{w.doc.where()}: {p}" for p in dict.fromkeys(found)]
    for s in list(by.get("Service", {}).values()) + list(by.get("NetworkPolicy", {}).values()):
        sel = s.obj["spec"].get("selector") if s.kind == "Service" else \
            s.obj["spec"].get("podSelector", {}).get("matchLabels")
        if sel and not any(w.doc.namespace == s.namespace and selects(
                sel, w.template.get("metadata", {}).get("labels", {})) for w in loads):
            field = "spec.selector" if s.kind == "Service" else "spec.podSelector"
            problems.append(f"{s.where()}: {field}: {sel} matches no pod template in namespace "
                            f"{s.namespace}")
    return problems, loads


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="manifest files or folders of them")
    args = ap.parse_args()
    docs = load(args.paths)
    problems, loads = check(docs)
    for p in problems:
        print(f"error: {p}", file=sys.stderr, flush=True)
    pods = sum(w.pods for w in loads)
    print(f"{len(docs)} objects, {len(loads)} pod templates of {pods} pods: "
          f"{len(problems)} problem(s)")
    print(json.dumps({"objects": len(docs), "workloads": len(loads), "pods": pods,
                      "problems": len(problems)}))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
