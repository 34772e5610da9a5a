"""Objects of runs that are gone: found by their labels, judged dead by their Leases.

An object labelled ``app.kubernetes.io/managed-by=netdoctor`` belongs to the run named by its
``netdoctor.io/run-id`` label; that run is alive while its Lease is
(:mod:`netdoctor.cluster.leases`). Only objects of dead runs are "left by earlier runs", and
only they are removed by ``--cleanup-only``; what a run could not remove of its own is listed
with the command that removes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from netdoctor.cluster import leases
from netdoctor.cluster.client import Cluster, status_code
from netdoctor.cluster.leases import MANAGED_BY, MANAGER, RUN_ID

CLEANUP_BUDGET = 180.0
"""Seconds each delete keeps retrying an API that does not answer (longer than most API
server restarts): the run's objects must go once the API is back."""
PLURALS = {"pod": "pods", "namespace": "namespaces", "lease": "leases"}
NAMESPACED = frozenset({"pod", "lease"})


async def send_delete(cluster: Cluster, path: str, *, namespace: str | None, version: str,
                      what: str, selector: str | None = None) -> httpx.Response:
    """One DELETE of ``path`` (an object, or with ``selector`` a collection): no grace
    period, dependents removed in the background. The one shape of every delete the suite
    sends for its own objects."""
    return await cluster.request("DELETE", path, namespace=namespace, version=version,
                                 params={"labelSelector": selector} if selector else None,
                                 body={"gracePeriodSeconds": 0,
                                       "propagationPolicy": "Background"},
                                 what=what)


async def delete_object(cluster: Cluster, kind: str, namespace: str, name: str,
                  problems: list[str], budget: float = CLEANUP_BUDGET) -> bool:
    """Delete one object (retried while the API does not answer: a repeated delete is
    harmless); True when it is gone or going."""
    path = f"{PLURALS[kind]}/{name}"

    async def call() -> Any:
        return await send_delete(cluster, path, namespace=namespace or None,
                                 version=leases.API_VERSION if kind == "lease" else "v1",
                                 what=f"delete {kind} {name}")

    try:
        await cluster.idempotent(call, f"delete {kind} {name}", budget)
    except Exception as exc:
        if status_code(exc) != 404:
            problems.append(f"{kind} {namespace + '/' if namespace else ''}{name}: {exc}")
            return False
    return True


COLLECTION_REFUSED = frozenset({403, 405})
"""Answers after which a collection is deleted one object at a time instead: not allowed
(RBAC without ``deletecollection``) or not served."""


async def delete_collection(cluster: Cluster, plural: str, namespace: str, selector: str,
                            problems: list[str], budget: float = CLEANUP_BUDGET,
                            version: str = "v1") -> bool | None:
    """Delete every ``plural`` in ``namespace`` labelled ``selector`` in one request
    (retried while the API does not answer). True when they are going; None when the
    server refused the verb (delete them one by one); False on any other failure (recorded
    in ``problems``)."""

    async def call() -> Any:
        return await send_delete(cluster, plural, namespace=namespace, version=version,
                                 selector=selector, what=f"delete {plural} -l {selector}")

    try:
        await cluster.idempotent(call, f"delete {plural} -l {selector}", budget)
    except Exception as exc:
        if status_code(exc) in COLLECTION_REFUSED:
            return None
        problems.append(f"{plural} -l {selector} in {namespace}: {exc}")
        return False
    return True


@dataclass(frozen=True)
class Leftover:
    """An object of another run, found by its labels."""

    kind: str
    namespace: str
    name: str
    run_id: str

    def describe(self) -> str:
        """``pod ns/name (run abc123)``."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} (run {self.run_id})"

    def command(self) -> str:
        """The ``kubectl`` command that removes it.

        Example:
            >>> Leftover("pod", "nd-1", "probe-w1", "abc123").command()
            'kubectl delete pod -n nd-1 probe-w1 --grace-period=0 --wait=false'
            >>> Leftover("lease", "default", "netdoctor-run-abc123", "abc123").command()
            'kubectl delete lease -n default netdoctor-run-abc123 --wait=false'
        """
        where = f" -n {self.namespace}" if self.namespace else ""
        return (f"kubectl delete {self.kind}{where} {self.name} "
                + ("--grace-period=0 " if self.kind == "pod" else "") + "--wait=false")

    def to_json(self) -> dict[str, str]:
        """``summary.json``'s form (``leftovers`` entries)."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name,
                "run_id": self.run_id, "command": self.command()}


async def find_leftovers(cluster: Cluster, run_id: str,
                         now: datetime | None = None) -> list[Leftover]:
    """Namespaces and pods labelled by netdoctor whose run is dead, and the dead runs'
    Leases: never an object of ``run_id`` or of a run whose Lease is live. A run is dead
    when its Lease expired; an object of a run without any Lease (it could not create one)
    counts as dead only once it is older than a Lease's duration."""
    selector = f"{MANAGED_BY}={MANAGER}"
    namespaces, pod_objs, run_leases = await asyncio.gather(
        cluster.list("namespaces", selector=selector), cluster.list("pods", selector=selector),
        leases.run_leases(cluster))
    now = now or datetime.now(UTC)
    alive = leases.live_runs(run_leases, now) | {run_id}
    expired = {str((o["metadata"].get("labels") or {}).get(RUN_ID)) for o in run_leases} - alive

    def dead(obj: dict[str, Any]) -> bool:
        owner = (obj["metadata"].get("labels") or {}).get(RUN_ID, "?")
        if owner in alive:
            return False
        if owner in expired:  # its heartbeat stopped a Lease duration ago or more
            return True
        born = leases.parse_time(str(obj["metadata"].get("creationTimestamp") or ""))
        return born is None or now - born >= timedelta(seconds=leases.DURATION)

    found = [_leftover("namespace", o) for o in namespaces if dead(o)]
    found += [_leftover("pod", o) for o in pod_objs if dead(o)]
    found += [_leftover("lease", o) for o in run_leases if dead(o)]
    return found


def _leftover(kind: str, obj: dict[str, Any]) -> Leftover:
    meta = obj["metadata"]
    return Leftover(kind, meta.get("namespace", "") if kind in NAMESPACED else "", meta["name"],
                    (meta.get("labels") or {}).get(RUN_ID, "?"))


async def delete_leftovers(cluster: Cluster, leftovers: Sequence[Leftover]) -> list[str]:
    """Delete leftovers (pods first, then namespaces, then the dead runs' Leases); return
    what could not be deleted."""
    problems: list[str] = []
    order = {"pod": 0, "namespace": 1, "lease": 2}
    for item in sorted(leftovers, key=lambda x: order.get(x.kind, 1)):
        await delete_object(cluster, item.kind, item.namespace, item.name, problems)
    return problems
