"""The Pod Security Standards a namespace enforces, checked on a pod template offline.

Pod Security Admission applies them on a cluster; check_semantics.py applies the same
rules to every pod template of the chapter, those inside JobSets, TrainJobs and
LeaderWorkerSets too, which admission only sees once the controllers create the pods.
"""

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def pod_security(spec, level, at):
    """Problems of a pod spec under the baseline or restricted level ([] for privileged)."""
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
