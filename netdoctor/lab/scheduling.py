"""Which nodes a pod may run on: taints, tolerations, node selectors, node affinity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

# Tolerations the DaemonSet controller adds to every daemon pod.
DAEMON_TOLERATIONS: list[Obj] = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _tolerated(taint: Obj, tolerations: Iterable[Obj]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_taints(node: Obj) -> list[Obj]:
    """Taints that block scheduling, including the one implied by a cordon."""
    taints = list(node.get("spec", {}).get("taints") or [])
    if node.get("spec", {}).get("unschedulable"):
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    return taints


def tolerates(spec: Obj, node: Obj) -> bool:
    """Whether the pod spec tolerates every NoSchedule/NoExecute taint of the node."""
    tolerations = spec.get("tolerations") or []
    return all(
        _tolerated(t, tolerations)
        for t in node_taints(node)
        if t.get("effect") in ("NoSchedule", "NoExecute")
    )


def _expr_ok(expr: Obj, values: dict[str, str]) -> bool:
    key, op, wanted = expr["key"], expr["operator"], expr.get("values") or []
    have = values.get(key)
    if op == "In":
        return have in wanted
    if op == "NotIn":
        return have not in wanted
    if op == "Exists":
        return key in values
    if op == "DoesNotExist":
        return key not in values
    if op in ("Gt", "Lt") and have is not None and wanted:
        try:
            return int(have) > int(wanted[0]) if op == "Gt" else int(have) < int(wanted[0])
        except ValueError:
            return False
    return False


def _affinity_ok(spec: Obj, node: Obj) -> bool:
    required = (
        spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if not required:
        return True
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in required.get("nodeSelectorTerms") or []:
        if all(_expr_ok(e, labels) for e in term.get("matchExpressions") or []) and all(
            _expr_ok(e, fields) for e in term.get("matchFields") or []
        ):
            return True
    return False


def fits(spec: Obj, node: Obj) -> bool:
    """Whether a pod with ``spec`` may be placed on ``node``."""
    labels = node["metadata"].get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    return _affinity_ok(spec, node) and tolerates(spec, node)


def daemon_spec(template_spec: Obj) -> Obj:
    """A daemon pod's spec as the DaemonSet controller evaluates it (extra tolerations)."""
    spec = dict(template_spec)
    spec["tolerations"] = list(template_spec.get("tolerations") or []) + DAEMON_TOLERATIONS
    return spec


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) matches ``labels``."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) \
        and all(_expr_ok(e, labels) for e in selector.get("matchExpressions") or [])


def anti_affinity_ok(pod: Obj, node: Obj, nodes: list[Obj], placed: list[Obj]) -> bool:
    """No pod already placed in ``node``'s topology domain matches one of ``pod``'s required
    anti-affinity terms (same namespace unless the term names others), as the scheduler's
    InterPodAffinity filter checks."""
    terms = (pod["spec"].get("affinity", {}).get("podAntiAffinity", {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    if not terms:
        return True
    labels_of = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in nodes}
    own_ns = pod["metadata"].get("namespace", "")
    for term in terms:
        key = term.get("topologyKey", "")
        domain = labels_of.get(node["metadata"]["name"], {}).get(key)
        if domain is None:
            continue
        namespaces = set(term.get("namespaces") or [own_ns])
        for other in placed:
            where = other["spec"].get("nodeName")
            if (where and labels_of.get(where, {}).get(key) == domain
                    and other["metadata"].get("namespace") in namespaces
                    and other["metadata"]["uid"] != pod["metadata"].get("uid")
                    and _selects(term.get("labelSelector") or {},
                                 other["metadata"].get("labels") or {})):
                return False
    return True


def pick_node(spec: Obj, nodes: list[Obj], load: dict[str, int],
              pod: Obj | None = None, placed: list[Obj] | None = None) -> Obj | None:
    """The fitting node with the fewest pods (ties by name), or ``None``.

    Not-ready nodes carry the ``node.kubernetes.io/not-ready`` taint, so only pods
    that tolerate it land there, as with the real scheduler. With ``pod`` and the pods
    already ``placed``, its required pod anti-affinity is honoured too.
    """
    candidates = [n for n in nodes if fits(spec, n) and (
        pod is None or anti_affinity_ok(pod, n, nodes, placed or []))]
    if not candidates:
        return None
    return min(
        candidates, key=lambda n: (load.get(n["metadata"]["name"], 0), n["metadata"]["name"])
    )


def is_ready(node: Obj) -> bool:
    """The node's Ready condition is True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions") or []
    )
