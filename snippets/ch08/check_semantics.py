"""Check what a schema cannot: that the chapter's manifests agree with each other.

Selectors find the pods they are meant for; an Indexed Job starts as many pods as the
--nnodes its torchrun waits for, and one process per GPU it asks for; the rendezvous
endpoint is the first pod's DNS name; every pod fits the chapter's node shape (capacity.py)
and tolerates its taint; every queue, claim and priority class a pod names exists; Kueue
can admit each job; every pod meets its namespace's Pod Security level.

    python snippets/ch08/check_semantics.py snippets/ch08
"""

import argparse
import json
import sys

import capacity
from manifests import gpus, load, pod_requests, quantity, torchrun, workloads

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


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


def pod_security(spec, level, at):
    """Problems of a pod under the baseline or restricted Pod Security Standard."""
    if level not in ("baseline", "restricted"):
        return []
    out, psc = [], spec.get("securityContext", {})
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            out.append(f"{at}.spec.{host}: not allowed at {level}")
    out += [f"{at}.spec.volumes: hostPath volume {v['name']} not allowed at {level}"
            for v in spec.get("volumes", []) if "hostPath" in v]
    for i, c in enumerate(containers):
        csc, where = c.get("securityContext", {}), f"{at}.spec.containers[{i}].securityContext"
        if csc.get("privileged"):
            out.append(f"{where}.privileged: not allowed at {level}")
        added = set(csc.get("capabilities", {}).get("add", []))
        allowed = BASELINE_CAPS if level == "baseline" else {"NET_BIND_SERVICE"}
        if added - allowed:
            out.append(f"{where}.capabilities.add: {sorted(added - allowed)} not allowed "
                       f"at {level}")
        if level != "restricted":
            continue
        if csc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}.allowPrivilegeEscalation: must be false")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            out.append(f"{where}.capabilities.drop: must include ALL")
        if not csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            out.append(f"{where}.runAsNonRoot: must be true (here or in the pod)")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{where}.runAsUser: must not be 0")
        seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{where}.seccompProfile.type: must be RuntimeDefault or Localhost")
    if level == "restricted":
        out += [f"{at}.spec.volumes: volume {v['name']} is of a type restricted does not allow"
                for v in spec.get("volumes", []) if not set(v) - {"name"} <= RESTRICTED_VOLUMES]
    return out


def check(docs):
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.kind, []).append(d)
    names = {(d.kind, d.namespace, d.name) for d in docs}
    levels = {d.name: d.obj["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce",
                                                              "privileged")
              for d in by_kind.get("Namespace", [])}
    flavors = {d.name: d.obj["spec"] for d in by_kind.get("ResourceFlavor", [])}
    queues = {d.name: d.obj["spec"] for d in by_kind.get("ClusterQueue", [])}
    loads = workloads(docs)
    free = capacity.for_pods()

    for w in loads:
        d, spec, at = w.doc, w.template["spec"], w.at or "(pod)"
        where = d.where()
        need = pod_requests(spec)
        # The node shape: every pod must fit on one node, with room for the node's agents.
        for res, amount in need.items():
            if res in free and amount > free[res]:
                problems.append(f"{where}: {at}.spec.containers: requests {res} {amount:g}, "
                                f"more than the {free[res]:g} a node of capacity.py leaves "
                                f"for pods")
            elif res not in free and res not in ("ephemeral-storage",):
                problems.append(f"{where}: {at}.spec.containers: requests {res}, which the "
                                f"node shape in capacity.py does not have")
        for i, c in enumerate(spec.get("containers", [])):
            req, lim = gpus(c, "requests"), gpus(c, "limits")
            if req and lim and req != lim:
                problems.append(f"{where}: {at}.spec.containers[{i}].resources: nvidia.com/gpu "
                                f"requests {req} but limits {lim}; extended resources need "
                                f"both equal")
        untolerated = set()
        if need.get("nvidia.com/gpu"):
            for taint in capacity.TAINTS:
                if not tolerates(spec.get("tolerations", []), taint):
                    untolerated.add(taint["key"])
                    problems.append(f"{where}: {at}.spec.tolerations: requests nvidia.com/gpu but "
                                    f"does not tolerate the GPU nodes' taint {taint['key']}="
                                    f"{taint['value']}:{taint['effect']}")
        # References that must resolve in the same namespace.
        for v in spec.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and ("PersistentVolumeClaim", d.namespace, claim) not in names:
                problems.append(f"{where}: {at}.spec.volumes: claim {claim} is not in namespace "
                                f"{d.namespace}")
        pc = spec.get("priorityClassName")
        if pc and not pc.startswith("system-") and ("PriorityClass", "", pc) not in names:
            problems.append(f"{where}: {at}.spec.priorityClassName: no PriorityClass {pc}")
        problems += [f"{where}: {p}" for p in pod_security(spec, levels.get(d.namespace), at)]
        if d.namespace not in levels and d.namespace:
            problems.append(f"{where}: metadata.namespace: no Namespace {d.namespace}")

        # --8<-- [start:nnodes]
        # torchrun: one agent per pod, one process per GPU, the rendezvous on the first pod.
        for i, c in enumerate(spec.get("containers", [])):
            run = torchrun(c)
            if run is None:
                continue
            flags, _, _ = run
            here = f"{where}: {at}.spec.containers[{i}]"
            if d.kind == "Job" and w.template is d.obj["spec"]["template"]:
                js = d.obj["spec"]
                if js.get("completionMode") != "Indexed":
                    problems.append(f"{where}: spec.completionMode: a torchrun Job must be Indexed")
                if js.get("completions") != js.get("parallelism"):
                    problems.append(f"{where}: spec.completions: {js.get('completions')} but "
                                    f"spec.parallelism {js.get('parallelism')}; all pods run "
                                    f"at once")
            if "--nnodes" in flags and int(flags["--nnodes"].split(":")[-1]) != w.pods:
                problems.append(f"{where}: {'spec.parallelism' if d.kind == 'Job' else at}: "
                                f"{w.pods} pods but torchrun --nnodes {flags['--nnodes']}")
            nproc = flags.get("--nproc-per-node")
            if nproc and int(nproc) != gpus(c):
                problems.append(f"{here}: torchrun --nproc-per-node {nproc} but the container "
                                f"has {gpus(c)} GPUs")
            endpoint = flags.get("--rdzv-endpoint")
            if endpoint and w.hostname0 and endpoint.rsplit(":", 1)[0] != w.hostname0:
                problems.append(f"{here}: torchrun --rdzv-endpoint {endpoint}: the first pod is "
                                f"{w.hostname0}")
        # --8<-- [end:nnodes]
        if d.kind == "TrainJob":
            node = next(c for c in spec["containers"] if c["name"] == "node")
            npn = w.extra.get("numProcPerNode")
            if npn and npn != gpus(node):
                problems.append(f"{where}: spec.trainer.numProcPerNode: {npn} but "
                                f"{gpus(node)} GPUs per node")
        sub = spec.get("subdomain")
        if d.kind == "Job" and sub:
            svc = next((s for s in by_kind.get("Service", []) if s.name == sub
                        and s.namespace == d.namespace), None)
            if svc is None or svc.obj["spec"].get("clusterIP") != "None":
                problems.append(f"{where}: {at}.spec.subdomain: no headless Service {sub} in "
                                f"{d.namespace}")

        # Kueue: the queue exists, admits this namespace, covers and can hold what the job asks.
        qname = d.obj["metadata"].get("labels", {}).get("kueue.x-k8s.io/queue-name")
        if qname:
            lq = next((q for q in by_kind.get("LocalQueue", []) if q.name == qname
                       and q.namespace == d.namespace), None)
            if lq is None:
                problems.append(f"{where}: metadata.labels.kueue.x-k8s.io/queue-name: no "
                                f"LocalQueue {qname} in namespace {d.namespace}")
                continue
            cq_name = lq.obj["spec"].get("clusterQueue")
            cq = queues.get(cq_name)
            if cq is None:
                problems.append(f"{lq.where()}: spec.clusterQueue: no ClusterQueue {cq_name}")
                continue
            sel = cq.get("namespaceSelector", {})
            ns_labels = {"kubernetes.io/metadata.name": d.namespace}
            ok = selects(sel.get("matchLabels"), ns_labels) and all(
                (ns_labels.get(e["key"]) in e.get("values", [])) == (e["operator"] == "In")
                for e in sel.get("matchExpressions", []))
            if not ok:
                problems.append(f"{where}: ClusterQueue {cq_name} does not admit namespace "
                                f"{d.namespace} (spec.namespaceSelector)")
            for group in cq.get("resourceGroups", []):
                missing = set(need) - set(group["coveredResources"])
                if missing:
                    problems.append(f"{where}: ClusterQueue {cq_name} does not cover "
                                    f"{sorted(missing)}: Kueue would never admit it")
                for fl in group["flavors"]:
                    if fl["name"] not in flavors:
                        problems.append(f"ClusterQueue {cq_name}: flavor {fl['name']} does "
                                        f"not exist")
                        continue
                    for taint in flavors[fl["name"]].get("nodeTaints", []):
                        if taint["key"] not in untolerated and \
                                not tolerates(spec.get("tolerations", []), taint):
                            problems.append(f"{where}: {at}.spec.tolerations: does not tolerate "
                                            f"{taint['key']} of flavor {fl['name']}")
                    for r in fl["resources"]:
                        most = sum(quantity(r.get(k, 0))
                                   for k in ("nominalQuota", "borrowingLimit"))
                        if need.get(r["name"], 0) * w.pods > most:
                            problems.append(f"{where}: needs {r['name']} "
                                            f"{need[r['name']] * w.pods:g} for {w.pods} pods, more "
                                            f"than ClusterQueue {cq_name} can ever hold ({most:g})")

    # Services and NetworkPolicies must select pods that exist.
    for s in by_kind.get("Service", []) + by_kind.get("NetworkPolicy", []):
        sel = s.obj["spec"].get("selector") if s.kind == "Service" else \
            s.obj["spec"].get("podSelector", {}).get("matchLabels")
        if not sel:
            continue
        if not any(w.doc.namespace == s.namespace and
                   selects(sel, w.template.get("metadata", {}).get("labels", {})) for w in loads):
            field = "spec.selector" if s.kind == "Service" else "spec.podSelector"
            problems.append(f"{s.where()}: {field}: {sel} matches no pod template in "
                            f"namespace {s.namespace}")
    return problems, loads


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="manifest files or folders of them")
    args = ap.parse_args()
    docs = load(args.paths)
    problems, loads = check(docs)
    for w in loads:
        per_pod = pod_requests(w.template["spec"]).get("nvidia.com/gpu", 0)
        print(f"{w.doc.where()}: {w.pods} pod(s) of {per_pod:g} GPU(s)")
    for p in problems:
        print(f"error: {p}", file=sys.stderr, flush=True)
    print(f"{len(docs)} objects, {len(loads)} workloads: {len(problems)} problem(s)")
    print(json.dumps({"objects": len(docs), "workloads": len(loads), "problems": len(problems)}))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
