"""Which runs are alive, and who may repair: ``coordination.k8s.io/v1`` Leases.

Every run holds a Lease ``netdoctor-run-<run-id>`` in :data:`LEASE_NAMESPACE` (labelled like
its other objects), created before it creates anything and renewed by a :class:`Heartbeat`
every :data:`RENEW_EVERY` seconds while the process lives; it is deleted when the run has
removed its objects. A run killed outright stops renewing, and :data:`DURATION` seconds
later its Lease has expired: its objects are then "left by an earlier run", which
``--cleanup-only`` removes. Objects of a run whose Lease is live are never touched.

A ``--remediate`` run that may change the cluster also holds :data:`REMEDIATION_LEASE` for
as long as it repairs, so two repairs never overlap: the second finds the Lease held and
refuses.

Example:
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> body = lease_body("netdoctor-run-abc123", "abc123", now)
    >>> body["spec"]["renewTime"], live(body, now + timedelta(seconds=DURATION - 1))
    ('2026-01-01T00:00:00.000000Z', True)
    >>> live(body, now + timedelta(seconds=DURATION + 1))
    False
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from netdoctor.cluster.client import Cluster, Target, connect, status_code

LEASE_NAMESPACE = "default"
"""Where the Leases live: a namespace every cluster has (the run's own namespace does not
exist yet when the run starts, nor after it ends)."""
REMEDIATION_LEASE = "netdoctor-remediation"
DURATION = 30
"""Seconds a Lease stays live without renewal (``spec.leaseDurationSeconds``)."""
RENEW_EVERY = 10.0
RELEASE_WITHIN = 5.0
"""Seconds the end of a run waits for the heartbeat to stop."""
API_VERSION = "coordination.k8s.io/v1"
MANAGED_BY = "app.kubernetes.io/managed-by"  # the labels every object of a run carries
MANAGER = "netdoctor"
RUN_ID = "netdoctor.io/run-id"
ROLE = "netdoctor.io/role"


def run_lease_name(run_id: str) -> str:
    """``netdoctor-run-<run-id>``."""
    return f"netdoctor-run-{run_id}"


def micro_time(when: datetime) -> str:
    """A ``metav1.MicroTime`` (RFC 3339, microseconds, UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def holder(run_id: str) -> str:
    """``spec.holderIdentity`` of a run: its id and the host it runs on."""
    return f"{run_id}@{socket.gethostname()}"


def lease_body(name: str, run_id: str, now: datetime, role: str = "run",
               acquired: str | None = None, transitions: int = 0) -> dict[str, Any]:
    """The Lease object a run creates or renews (``acquired``: an earlier acquireTime)."""
    return {"apiVersion": API_VERSION, "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                         "labels": {MANAGED_BY: MANAGER, RUN_ID: run_id, ROLE: role}},
            "spec": {"holderIdentity": holder(run_id), "leaseDurationSeconds": DURATION,
                     "acquireTime": acquired or micro_time(now), "renewTime": micro_time(now),
                     "leaseTransitions": transitions}}


def parse_time(text: str) -> datetime | None:
    """A Kubernetes Time or MicroTime (``None`` when unreadable)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def live(lease: Mapping[str, Any], now: datetime) -> bool:
    """Whether the Lease is held: a holder, renewed within its duration."""
    spec = lease.get("spec") or {}
    renewed = parse_time(str(spec.get("renewTime") or ""))
    if not spec.get("holderIdentity") or renewed is None:
        return False
    return renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) > now


async def _get(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        resp = await cluster.request("GET", f"leases/{name}", namespace=LEASE_NAMESPACE,
                                     version=API_VERSION, what=f"get lease {name}")
    except Exception as exc:
        if status_code(exc) == 404:
            return None
        raise
    found: dict[str, Any] = resp.json()
    return found


async def _write(cluster: Cluster, method: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    path = "leases" if method == "POST" else f"leases/{name}"
    await cluster.request(method, path, namespace=LEASE_NAMESPACE, version=API_VERSION,
                          body=body, what=f"{'create' if method == 'POST' else 'renew'} "
                                          f"lease {name}")


async def acquire(cluster: Cluster, name: str, run_id: str, role: str) -> str:
    """Take the Lease ``name`` for ``run_id``; "" when held now, else who holds it.

    Optimistic: a create that finds the Lease there (409), or an update that finds it
    changed (409, its resourceVersion), lost to another run, which then holds it.
    """
    now = datetime.now(UTC)
    current = await _get(cluster, name)
    if current is None:
        try:
            await _write(cluster, "POST", lease_body(name, run_id, now, role))
            return ""
        except Exception as exc:
            if status_code(exc) != 409:
                raise
            current = await _get(cluster, name) or {}
    spec = current.get("spec") or {}
    mine = spec.get("holderIdentity") == holder(run_id)
    if live(current, now) and not mine:
        return str(spec.get("holderIdentity"))
    body = lease_body(name, run_id, now, role, acquired=spec.get("acquireTime") if mine else None,
                      transitions=int(spec.get("leaseTransitions") or 0) + (0 if mine else 1))
    body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
    try:
        await _write(cluster, "PUT", body)
    except Exception as exc:
        if status_code(exc) != 409:
            raise
        again = await _get(cluster, name) or {}
        return str((again.get("spec") or {}).get("holderIdentity") or "another run")
    return ""


async def renew(cluster: Cluster, name: str, run_id: str) -> bool:
    """Renew the Lease if this run still holds it (never re-create one that was deleted:
    the run is ending). Returns whether it was renewed."""
    current = await _get(cluster, name)
    spec = (current or {}).get("spec") or {}
    if current is None or spec.get("holderIdentity") != holder(run_id):
        return False
    labels = (current.get("metadata") or {}).get("labels") or {}
    body = lease_body(name, run_id, datetime.now(UTC), str(labels.get(ROLE, "run")),
                      acquired=spec.get("acquireTime"),
                      transitions=int(spec.get("leaseTransitions") or 0))
    body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
    await _write(cluster, "PUT", body)
    return True


async def release(cluster: Cluster, name: str) -> None:
    """Delete the Lease (gone already is fine)."""
    try:
        await cluster.idempotent(
            lambda: _delete(cluster, name), f"delete lease {name}", cluster.timeout * 2)
    except Exception as exc:
        if status_code(exc) != 404:
            raise


async def _delete(cluster: Cluster, name: str) -> Any:
    return await cluster.request("DELETE", f"leases/{name}", namespace=LEASE_NAMESPACE,
                                 version=API_VERSION, what=f"delete lease {name}")


async def run_leases(cluster: Cluster) -> list[dict[str, Any]]:
    """The Leases of netdoctor runs."""
    try:
        return await cluster.list("leases", namespace=LEASE_NAMESPACE,
                                  selector=f"{MANAGED_BY}={MANAGER},{ROLE}=run")
    except ValueError as exc:  # kr8s: the kind is not served (an API server before 1.14)
        if "not found" in str(exc):
            return []
        raise


def live_runs(leases: list[dict[str, Any]], now: datetime) -> set[str]:
    """Run ids whose Lease is live."""
    return {str((o["metadata"].get("labels") or {}).get(RUN_ID)) for o in leases
            if live(o, now)}


class Heartbeat:
    """Renews Leases from a thread of its own (the run's event loop only turns while the run
    calls into it), with its own connection, every :attr:`every` seconds; stops renewing
    when told or when the process ends."""

    def __init__(self, target: Target, run_id: str, every: float = RENEW_EVERY) -> None:
        self.target = target
        self.run_id = run_id
        self.every = every
        self.names: dict[str, str] = {}
        """Lease name -> role, renewed on every beat."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, name: str, role: str) -> None:
        """Renew ``name`` from now on (and start beating)."""
        with self._lock:
            self.names[name] = role
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="netdoctor-lease",
                                            daemon=True)
            self._thread.start()

    def drop(self, name: str) -> None:
        """Stop renewing ``name``."""
        with self._lock:
            self.names.pop(name, None)

    def stop(self) -> None:
        """Stop renewing (bounded); the caller deletes the Leases (:func:`release`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RELEASE_WITHIN)

    def _main(self) -> None:
        with contextlib.suppress(Exception):  # the API may be away: the Lease then expires
            asyncio.run(self._beat())

    async def _beat(self) -> None:
        cluster: Cluster | None = None
        while not self._stop.wait(self.every):
            try:
                cluster = cluster or await connect(self.target)
                with self._lock:
                    names = dict(self.names)
                for name in names:
                    if not self._stop.is_set():
                        await renew(cluster, name, self.run_id)
            except Exception:  # renewal is retried on the next beat
                pass


def release_now(target: Target, name: str) -> str:
    """:func:`release` from synchronous code, with a connection of its own; returns the
    problem ("" when the Lease is gone)."""
    async def go() -> None:
        await release(await connect(target), name)
    try:
        asyncio.run(go())
    except Exception as exc:  # it expires by itself; said where the caller logs
        return f"Lease {LEASE_NAMESPACE}/{name} not deleted ({type(exc).__name__}: {exc}); " \
               f"it expires within {DURATION}s"
    return ""
