"""Pod Security Admission: the Pod Security Standards enforced per namespace, as the real
admission plugin does.

The level comes from the namespace's ``pod-security.kubernetes.io/enforce`` label, else the
cluster default (``lab up --pod-security``); exempt namespaces (the lab's system namespaces,
as clusters exempt kube-system) are not checked. A pod that violates its level is refused
with the API server's wording, listing every violated check.

Example:
    >>> spec = {"hostNetwork": True, "containers": [{"name": "c", "image": "i:1"}]}
    >>> violations("baseline", spec)
    ['host namespaces (hostNetwork=true)']
"""

from __future__ import annotations

from collections.abc import Iterable

from netdoctor.lab.api.resources import Resource, resource
from netdoctor.lab.api.store import ApiError, Obj, Store

LEVELS = ("privileged", "baseline", "restricted")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
NAMESPACES = resource("", "namespaces")
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})


def _containers(spec: Obj) -> list[Obj]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _sc(obj: Obj) -> Obj:
    return dict(obj.get("securityContext") or {})


def _names(items: Iterable[str]) -> str:
    quoted = [f'"{i}"' for i in items]
    return ("container " if len(quoted) == 1 else "containers ") + ", ".join(quoted)


def _baseline(spec: Obj) -> list[str]:
    out: list[str] = []
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        out.append(f"host namespaces ({', '.join(hosts)})")
    privileged = [c["name"] for c in _containers(spec) if _sc(c).get("privileged")]
    if privileged:
        out.append(f"privileged ({_names(privileged)} must not set "
                   "securityContext.privileged=true)")
    for c in _containers(spec):
        extra = [cap for cap in (_sc(c).get("capabilities") or {}).get("add") or []
                 if cap not in BASELINE_CAPABILITIES]
        if extra:
            out.append(f'non-default capabilities (container "{c["name"]}" must not include '
                       + ", ".join(f'"{x}"' for x in extra)
                       + " in securityContext.capabilities.add)")
    host_paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        out.append("hostPath volumes (" + ", ".join(
            f'volume "{n}"' for n in host_paths) + ")")
    ports = [(c["name"], p["hostPort"]) for c in _containers(spec)
             for p in c.get("ports") or [] if p.get("hostPort")]
    if ports:
        out.append("hostPort (" + ", ".join(f'container "{n}" uses hostPort {p}'
                                            for n, p in ports) + ")")
    return out


def _restricted(spec: Obj) -> list[str]:
    out: list[str] = []
    bad_volumes = [(v["name"], next(k for k in v if k != "name")) for v in spec.get("volumes") or []
                   if not RESTRICTED_VOLUMES & set(v)]
    if bad_volumes:
        out.append("restricted volume types (" + ", ".join(
            f'volume "{n}" uses restricted volume type "{t}"' for n, t in bad_volumes) + ")")
    containers, pod_sc = _containers(spec), _sc(spec)
    escalating = [c["name"] for c in containers
                  if _sc(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        out.append(f"allowPrivilegeEscalation != false ({_names(escalating)} must set "
                   "securityContext.allowPrivilegeEscalation=false)")
    caps = [c["name"] for c in containers
            if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
    if caps:
        out.append(f'unrestricted capabilities ({_names(caps)} must set '
                   'securityContext.capabilities.drop=["ALL"])')
    root = [c["name"] for c in containers
            if _sc(c).get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True]
    if root:
        out.append(f"runAsNonRoot != true (pod or {_names(root)} must set "
                   "securityContext.runAsNonRoot=true)")
    uid0 = [c["name"] for c in containers if _sc(c).get("runAsUser", pod_sc.get("runAsUser")) == 0]
    if uid0:
        out.append(f"runAsUser=0 (pod or {_names(uid0)} must not set runAsUser=0)")
    seccomp = [c["name"] for c in containers
               if ((_sc(c).get("seccompProfile") or pod_sc.get("seccompProfile") or {})
                   .get("type")) not in ("RuntimeDefault", "Localhost")]
    if seccomp:
        out.append(f'seccompProfile (pod or {_names(seccomp)} must set '
                   'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    return out


def violations(level: str, spec: Obj) -> list[str]:
    """What ``spec`` violates at ``level`` (empty when it complies)."""
    if level == "privileged":
        return []
    found = _baseline(spec)
    return found + _restricted(spec) if level == "restricted" else found


class PodSecurity:
    """The admission step (``Store.admission``) enforcing the namespace's level on new pods.

    Args:
        store: Where the namespaces live.
        default: The level of namespaces without an enforce label.
        exempt: Namespaces never checked.
    """

    def __init__(self, store: Store, default: str = "privileged",
                 exempt: Iterable[str] = ()) -> None:
        if default not in LEVELS:
            raise ValueError(f"unknown Pod Security level {default!r}; one of {LEVELS}")
        self.store, self.default, self.exempt = store, default, frozenset(exempt)

    def level(self, namespace: str) -> str:
        """The enforced level of ``namespace``."""
        ns = self.store.peek(NAMESPACES, "", namespace) or {}
        label = (ns.get("metadata", {}).get("labels") or {}).get(ENFORCE_LABEL)
        return label if label in LEVELS else self.default

    def __call__(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Refuse a new pod that violates its namespace's level.

        Raises:
            ApiError: 403 Forbidden, worded as the API server's.
        """
        if res.kind == "Namespace":
            label = (obj["metadata"].get("labels") or {}).get(ENFORCE_LABEL)
            if label is not None and label not in LEVELS:
                raise ApiError(422, "Invalid", f'Namespace "{obj["metadata"]["name"]}" is '
                               f'invalid: metadata.labels[{ENFORCE_LABEL}]: Invalid value: '
                               f'"{label}": must be one of privileged, baseline, restricted')
            return
        if res.kind != "Pod" or old is not None:
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if namespace in self.exempt:
            return
        level = self.level(namespace)
        found = violations(level, obj.get("spec") or {})
        if found:
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity '
                           f'"{level}:latest": ' + ", ".join(found),
                           {"name": name, "kind": "pods"})

