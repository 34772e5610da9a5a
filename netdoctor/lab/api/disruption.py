"""PodDisruptionBudgets (policy/v1) and the ``pods/eviction`` subresource.

As the disruption controller and the eviction REST handler do it: a budget selects pods
in its namespace; ``status.currentHealthy`` counts the selected Ready pods,
``desiredHealthy`` comes from ``minAvailable`` (a number or a percentage of the expected
pods) or from ``maxUnavailable``, and ``disruptionsAllowed`` is the difference (never
below 0). An eviction of a Ready pod that some budget does not allow is answered
``429 TooManyRequests``; one that is allowed lowers the budget's ``disruptionsAllowed``
and deletes the pod gracefully. A pod that is not Ready may be evicted while its budgets
are met (the default ``IfHealthyBudget`` policy).

Example:
    >>> pdb = {"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "a"}}}}
    >>> budget_status(pdb, ready=2, expected=2)["disruptionsAllowed"]
    0
    >>> budget_status({"spec": {"maxUnavailable": "50%"}}, ready=4, expected=4)
    {'currentHealthy': 4, 'desiredHealthy': 2, 'disruptionsAllowed': 2, 'expectedPods': 4}
"""

from __future__ import annotations

import math
from typing import Any

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.selectors import match_labels
from netdoctor.lab.api.store import ApiError, Obj, Store

PDBS = resource("policy", "poddisruptionbudgets")
PODS = resource("", "pods")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _amount(value: Any, expected: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * expected / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def budget_status(pdb: Obj, *, ready: int, expected: int) -> Obj:
    """The status fields the disruption controller writes."""
    spec = pdb.get("spec", {})
    if "maxUnavailable" in spec:
        desired = max(0, expected - _amount(spec["maxUnavailable"], expected, round_up=True))
    else:
        desired = _amount(spec.get("minAvailable", 1), expected, round_up=True)
    return {"currentHealthy": ready, "desiredHealthy": desired,
            "disruptionsAllowed": max(0, ready - desired), "expectedPods": expected}


def selected(store: Store, pdb: Obj) -> list[Obj]:
    """The live pods a budget selects."""
    meta = pdb["metadata"]
    return [p for p in store.items(PODS, meta["namespace"])
            if not p["metadata"].get("deletionTimestamp")
            and match_labels(pdb.get("spec", {}).get("selector") or {},
                             p["metadata"].get("labels") or {})]


def sync_budgets(store: Store) -> None:
    """Write every budget's status (the disruption controller's pass)."""
    for pdb in list(store.items(PDBS)):
        pods = selected(store, pdb)
        status = {**budget_status(pdb, ready=sum(map(_ready, pods)), expected=len(pods)),
                  "observedGeneration": pdb["metadata"].get("generation", 1)}
        if {k: pdb.get("status", {}).get(k) for k in status} != status:
            meta = pdb["metadata"]

            def write(obj: Obj, status: Obj = status) -> None:
                obj["status"] = {**obj.get("status", {}), **status}
            store.mutate(PDBS, meta["namespace"], meta["name"], write, subresource="status")


def evict(store: Store, namespace: str, name: str) -> Obj:
    """Evict one pod, or raise the 429 a budget gives.

    Raises:
        ApiError: 404 for an unknown pod, 429 when a budget does not allow it.
    """
    pod = store.get(PODS, namespace, name)
    labels = pod["metadata"].get("labels") or {}
    budgets = [b for b in store.list(PDBS, namespace)
               if match_labels(b.get("spec", {}).get("selector") or {}, labels)]
    for pdb in budgets:
        pods = selected(store, pdb)
        status = budget_status(pdb, ready=sum(map(_ready, pods)), expected=len(pods))
        healthy_enough = status["currentHealthy"] >= status["desiredHealthy"]
        if (_ready(pod) and status["disruptionsAllowed"] < 1) or not healthy_enough:
            raise ApiError(429, "TooManyRequests", VIOLATION, {"causes": [{
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {pdb['metadata']['name']} needs "
                           f"{status['desiredHealthy']} healthy pods and has "
                           f"{status['currentHealthy']} currently"}]})
    for pdb in budgets:
        meta = pdb["metadata"]
        store.mutate(PDBS, namespace, meta["name"], lambda o: o.setdefault("status", {}).update(
            disruptionsAllowed=max(0, o.get("status", {}).get("disruptionsAllowed", 1) - 1),
            disruptedPods={**o.get("status", {}).get("disruptedPods", {}),
                           name: pod["metadata"].get("creationTimestamp", "")}),
            subresource="status")
    store.delete(PODS, namespace, name, grace=True, propagation="Background")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}
