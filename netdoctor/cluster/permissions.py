"""What each mode may ask of the API, as data, and a check of it before the run starts.

``deploy/rbac/<mode>.yaml`` ship exactly these rules (a unit test holds them equal), and the
end-to-end tier proves them least: each mode runs with only its manifest, and every rule is
used by a run. Before creating anything the suite asks the API server which of them the
credentials lack (``SelfSubjectAccessReview``, allowed to every authenticated user) and
stops with one message naming each missing verb and resource and the manifest to apply.

Example:
    >>> rule = DIAGNOSE[0].rule()
    >>> rule["resources"], rule["verbs"]
    (['nodes'], ['list'])
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from netdoctor.cluster.client import Cluster, status_code

Mode = Literal["diagnose", "validate", "remediate"]
MANIFEST = "deploy/rbac/{mode}.yaml"


@dataclass(frozen=True)
class Need:
    """One PolicyRule the suite needs, and why."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    probe_namespace: bool = False
    """Used only inside the run's probe namespace (checked there)."""
    own_namespace: bool = False
    """Needed only when the run creates its own probe namespace (no ``--probe-namespace``)."""
    optional: bool = False
    """Used when granted, not asked for before the run: without it the run takes a slower
    way (credentials bound to an older manifest keep working)."""

    def rule(self) -> dict[str, Any]:
        """The PolicyRule as a manifest writes it."""
        out: dict[str, Any] = {"apiGroups": [self.group], "resources": list(self.resources)}
        if self.names:
            out["resourceNames"] = list(self.names)
        out["verbs"] = list(self.verbs)
        return out


DIAGNOSE: tuple[Need, ...] = (
    Need("", ("nodes",), ("list",), "the cluster profile: nodes, podCIDRs, readiness"),
    Need("", ("namespaces",), ("list",), "objects left by earlier runs"),
    Need("", ("namespaces",), ("create", "delete"), "the run's own probe namespace",
         own_namespace=True),
    Need("", ("pods",), ("list",), "probe readiness, components, leftovers"),
    Need("", ("pods",), ("create", "delete"), "probe pods", probe_namespace=True),
    Need("", ("pods",), ("deletecollection",),
         "the run's probe pods removed in one request (one request per pod without it)",
         probe_namespace=True, optional=True),
    Need("", ("pods/exec",), ("get", "create"),
         "commands in probe pods (a websocket exec needs both verbs)", probe_namespace=True),
    Need("", ("pods/log",), ("get",), "CoreDNS and kube-proxy log lines"),
    Need("", ("events",), ("list",), "why a probe or component pod is not Ready"),
    Need("", ("services", "configmaps"), ("list",), "cluster DNS, Services, kube-proxy mode"),
    Need("apps", ("daemonsets", "deployments"), ("list",), "CNI, kube-proxy and CoreDNS"),
    Need("discovery.k8s.io", ("endpointslices",), ("list",), "Services without endpoints"),
    Need("coordination.k8s.io", ("leases",), ("list", "get", "create", "update", "delete"),
         "the run's Lease in namespace default, renewed while it runs: objects of a live "
         "run are never touched, and two repairs never overlap"),
)
VALIDATE: tuple[Need, ...] = (
    *DIAGNOSE,
    Need("", ("services",), ("create", "delete"), "the echo Service", probe_namespace=True),
    Need("apps", ("deployments",), ("create", "delete"), "the echo Deployments",
         probe_namespace=True),
    Need("apps", ("deployments",), ("deletecollection",),
         "the echo Deployments removed in one request (one request each without it)",
         probe_namespace=True, optional=True),
)
REMEDIATE: tuple[Need, ...] = (
    *VALIDATE,
    Need("", ("endpoints",), ("list",), "repairs check a Service's endpoints"),
    Need("", ("services", "configmaps"), ("get", "patch"),
         "Service selector and CoreDNS Corefile repairs (read first: the undo record)"),
    Need("apps", ("daemonsets", "deployments"), ("get", "patch"),
         "rollout restarts of kube-proxy and CoreDNS (read first: the undo record)"),
    Need("apps", ("statefulsets",), ("list",), "the workload a Service's selector should match"),
    Need("", ("pods/eviction",), ("create",),
         "pods moved off a repaired node through the Eviction API (PodDisruptionBudgets hold)"),
    Need("", ("events",), ("create",),
         "an Event (reason NetdoctorRemediation) on each Node or object a repair touched"),
    Need("", ("namespaces", "serviceaccounts", "configmaps"), ("get", "create"),
         "the pinned Flannel manifest, applied when its DaemonSet is missing"),
    Need("apps", ("daemonsets",), ("get", "create"), "the pinned Flannel manifest"),
    Need("rbac.authorization.k8s.io", ("clusterroles", "clusterrolebindings"),
         ("get", "create"), "the pinned Flannel manifest"),
    Need("rbac.authorization.k8s.io", ("clusterroles",), ("bind", "escalate"),
         "the Flannel ClusterRole and its binding (RBAC escalation prevention)",
         names=("flannel",)),
    Need("", ("serviceaccounts", "configmaps"), ("delete",),
         "netdoctor rollback: the pinned Flannel manifest's objects it created"),
    Need("apps", ("daemonsets",), ("delete",),
         "netdoctor rollback: the pinned Flannel manifest's objects it created"),
    Need("rbac.authorization.k8s.io", ("clusterroles", "clusterrolebindings"), ("delete",),
         "netdoctor rollback: the pinned Flannel manifest's objects it created"),
)
MODES: dict[Mode, tuple[Need, ...]] = {
    "diagnose": DIAGNOSE, "validate": VALIDATE, "remediate": REMEDIATE,
}


@dataclass(frozen=True)
class Missing:
    """One verb on one resource the credentials lack."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    why: str

    def describe(self) -> str:
        """``create pods/exec in namespace x (commands in probe pods)``."""
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {what}{where} ({self.why})"


async def _allowed(cluster: Cluster, verb: str, group: str, resource: str,
                   namespace: str | None, name: str | None) -> bool | None:
    plural, _, sub = resource.partition("/")
    attrs: dict[str, str] = {"verb": verb, "group": group, "resource": plural}
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    if name:
        attrs["name"] = name
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    try:
        resp = await cluster.request("POST", "selfsubjectaccessreviews",
                                     version="authorization.k8s.io/v1", body=body,
                                     what=f"access review of {verb} {resource}", safe=True)
    except Exception as exc:
        if status_code(exc) in (403, 404):
            return None  # reviews not allowed or not served: the run finds out by doing
        raise
    return bool((resp.json().get("status") or {}).get("allowed"))


async def missing(cluster: Cluster, mode: Mode, probe_namespace: str,
                  own_namespace: bool) -> list[Missing]:
    """The permissions of ``mode`` the credentials lack (empty when all are there, or
    when the API server does not answer access reviews)."""
    checks: list[tuple[Need, str, str, str | None]] = []
    for need in MODES[mode]:
        if (need.own_namespace and not own_namespace) or need.optional:
            continue
        namespace = probe_namespace if need.probe_namespace else None
        checks += [(need, verb, res, namespace) for res in need.resources for verb in need.verbs]
    answers = await asyncio.gather(*(
        _allowed(cluster, verb, need.group, res, ns, need.names[0] if need.names else None)
        for need, verb, res, ns in checks))
    return [Missing(verb, need.group, res, ns, need.why)
            for (need, verb, res, ns), ok in zip(checks, answers, strict=True) if ok is False]


def hint(mode: Mode) -> str:
    """What to apply for ``mode``'s permissions."""
    manifest = MANIFEST.format(mode=mode)
    return (f"Apply {manifest} (kubectl apply -f {manifest}) and run as its ServiceAccount "
            "netdoctor/netdoctor, or grant these to your user")


def message(mode: Mode, lacking: list[Missing]) -> str:
    """The one message for missing permissions."""
    return (f"forbidden: the credentials lack {len(lacking)} permission(s) that "
            f"'{mode}' needs: " + "; ".join(m.describe() for m in lacking) + ". " + hint(mode))
