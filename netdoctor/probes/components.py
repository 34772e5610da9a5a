"""Component state read from API objects: CoreDNS, kube-proxy, Flannel, Service endpoints.

Pure functions turn listed objects into small frozen findings (unit-testable); the async
readers list what they need, concurrently.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from netdoctor.cluster.client import Cluster
from netdoctor.cluster.leases import MANAGED_BY, MANAGER
from netdoctor.cluster.probes import event_lines, pod_problem, pod_ready
from netdoctor.cluster.profile import ClusterProfile, NodeInfo, Workload
from netdoctor.cluster.roles import template_labels

IO_TIMEOUT = re.compile(r"i/o timeout")
READINESS = re.compile(r"Readiness probe failed|Liveness probe failed")
LOG_TAIL = 200


@dataclass(frozen=True)
class PodState:
    """One component pod: where it runs, readiness, restarts and why it is not ready."""

    namespace: str
    name: str
    node: str
    phase: str
    ready: bool
    restarts: int
    waiting_reason: str
    problem: str
    last_exit: float | None = None
    """When a container last terminated (epoch seconds, ``lastState.terminated.finishedAt``)."""
    ready_since: float | None = None
    """When the pod last became Ready (epoch seconds; None when not Ready or unknown)."""

    @property
    def crashlooping(self) -> bool:
        """The kubelet is backing off restarts of a container."""
        return self.waiting_reason == "CrashLoopBackOff"

    def restarting(self, now: float, window: float) -> bool:
        """A container terminated within the last ``window`` seconds: the restart count says
        something about now, not about a reboot long ago."""
        return self.last_exit is not None and now - self.last_exit <= window


def _timestamp(value: object) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pod_state(obj: Mapping[str, Any]) -> PodState:
    """A :class:`PodState` from a Pod object."""
    status = obj.get("status", {})
    statuses = status.get("containerStatuses") or []
    waiting = next(((cs.get("state") or {}).get("waiting", {}).get("reason", "")
                    for cs in statuses if (cs.get("state") or {}).get("waiting")), "")
    ready = pod_ready(obj)
    exits = [t for cs in statuses if (t := _timestamp(
        ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))) is not None]
    return PodState(
        namespace=obj["metadata"]["namespace"], name=obj["metadata"]["name"],
        node=obj.get("spec", {}).get("nodeName") or "", phase=status.get("phase", ""),
        ready=ready, restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses),
        waiting_reason=waiting, problem="" if ready else pod_problem(obj),
        last_exit=max(exits) if exits else None,
        ready_since=next((_timestamp(c.get("lastTransitionTime"))
                          for c in status.get("conditions") or []
                          if c.get("type") == "Ready" and c.get("status") == "True"), None),
    )


@dataclass(frozen=True)
class ComponentState:
    """A component's workload, its pods, their Events and (for CoreDNS) log lines."""

    workload: Workload | None
    pods: tuple[PodState, ...]
    events: Mapping[str, tuple[str, ...]]
    """Event lines per pod name."""
    log_lines: Mapping[str, tuple[str, ...]]
    """Matching log lines per pod name (current and previous container)."""
    desired: int = 0
    ready_count: int = 0
    error: str = ""
    """Why the state could not be read completely (e.g. pods/log forbidden)."""
    since_ready: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Event lines per pod since it last became Ready (all of them for a pod not Ready):
    a probe that failed while the pod started, and passes since, is no finding."""

    def pods_on(self, node: str) -> tuple[PodState, ...]:
        """The component's pods on ``node``."""
        return tuple(p for p in self.pods if p.node == node)


def _recent(event: Mapping[str, Any], since: float | None) -> bool:
    if since is None:
        return True
    at = _timestamp(event.get("lastTimestamp") or event.get("eventTime")
                    or event.get("firstTimestamp"))
    return at is None or at >= since


def events_by_pod(events: Iterable[Mapping[str, Any]], names: set[str],
                  since: float | None = None) -> dict[str, tuple[str, ...]]:
    """Event lines per pod in ``names``; with ``since`` (epoch seconds), only Events seen
    since then (an Event without a time is kept)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        name = (e.get("involvedObject") or {}).get("name", "")
        if name in names and _recent(e, since):
            grouped.setdefault(name, []).append(e)
    return {name: event_lines(items) for name, items in grouped.items()}


async def log_tails(cluster: Cluster, pod: PodState,
                    recent: float | None = None) -> list[str]:
    """The log tails of ``pod``: its previous containers' (only when one restarted: the API
    answers 400 for a container that never did) and then its current ones; with ``recent``
    (seconds), only that last stretch.

    Raises:
        The API's error when reading logs is forbidden; any other failed read is left out.
    """
    params = {"tailLines": str(LOG_TAIL)}
    if recent is not None:
        params["sinceSeconds"] = str(max(int(recent), 1))
    texts = []
    for previous in ("true", "false") if pod.restarts else ("false",):
        try:
            resp = await cluster.request(
                "GET", f"pods/{pod.name}/log", namespace=pod.namespace,
                params={**params, "previous": previous},
                what=f"logs of {pod.namespace}/{pod.name}")
        except Exception as exc:
            # No previous container is a 400 on real clusters.
            if "forbidden" in str(exc).lower():
                raise
            continue
        texts.append(resp.text)
    return texts


async def _log_matches(cluster: Cluster, pod: PodState, pattern: re.Pattern[str],
                       recent: float | None = None) -> tuple[str, ...]:
    found = [ln for text in await log_tails(cluster, pod, recent)
             for ln in text.splitlines() if pattern.search(ln)]
    return tuple(dict.fromkeys(found))


async def read_component(
    cluster: Cluster, workload: Workload | None, *, logs: re.Pattern[str] | None = None,
    status: Mapping[str, Any] | None = None, recent: float | None = None,
) -> ComponentState:
    """Pods, Events and matching log lines of a component; with ``recent`` (seconds), only
    Events and log lines of that last stretch of time (history says nothing about now)."""
    if workload is None:
        return ComponentState(None, (), {}, {})
    pods_raw, events = await asyncio.gather(
        cluster.list("pods", namespace=workload.namespace, selector=workload.selector),
        cluster.list("events", namespace=workload.namespace))
    pods = tuple(sorted((pod_state(p) for p in pods_raw), key=lambda p: (p.node, p.name)))
    cutoff = None if recent is None else time.time() - recent
    by_pod = events_by_pod(events, {p.name for p in pods}, cutoff)
    # Event and condition times have one-second resolution: an Event stamped in the second
    # the pod became Ready happened before it did.
    since_ready = {p.name: events_by_pod(events, {p.name}, max(
        (t for t in (cutoff, p.ready_since + 1 if p.ready and p.ready_since else None)
         if t is not None), default=None)).get(p.name, ()) for p in pods}
    lines: dict[str, tuple[str, ...]] = {}
    error = ""
    if logs is not None:
        try:
            found = await asyncio.gather(*(_log_matches(cluster, p, logs, recent)
                                           for p in pods))
            lines = {p.name: f for p, f in zip(pods, found, strict=True) if f}
        except Exception as exc:
            error = f"cannot read logs of {workload.ref}: {exc}"
    st = status or {}
    if workload.kind == "StaticPod":  # no controller: one mirror pod per node is the count
        st = {"desiredNumberScheduled": len(pods), "numberReady": sum(p.ready for p in pods)}
    return ComponentState(workload, pods, by_pod, lines,
                          desired=int(st.get("desiredNumberScheduled") or st.get("replicas") or 0),
                          ready_count=int(st.get("numberReady") or st.get("readyReplicas") or 0),
                          error=error, since_ready=since_ready)


async def read_workload_status(cluster: Cluster, workload: Workload | None) -> dict[str, Any]:
    """The current ``status`` of a DaemonSet or Deployment (empty when gone)."""
    if workload is None or workload.kind == "StaticPod":
        return {}
    kind = "daemonsets" if workload.kind == "DaemonSet" else "deployments"
    for obj in await cluster.list(kind, namespace=workload.namespace):
        if obj["metadata"]["name"] == workload.name:
            return dict(obj.get("status") or {})
    return {}


@dataclass(frozen=True)
class ServiceEndpoints:
    """A Service with a selector, its ready endpoints and what its selector should back it.

    ``wanted`` is how many pods the workloads behind the selector want (``None`` when no
    workload's pod template matches); ``pods`` how many pods the selector matches.
    """

    namespace: str
    name: str
    selector: str
    ready: int
    not_ready: int
    wanted: int | None = None
    pods: int = 0
    workloads: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def matches_nothing(self) -> bool:
        """The selector matches no workload and no pod at all."""
        return self.wanted is None and self.pods == 0

    @property
    def hurts(self) -> bool:
        """No ready endpoint where pods are wanted (a workload asks for replicas, or bare
        pods match) or where the selector matches nothing; a workload scaled to zero on
        purpose is not a fault."""
        return self.ready == 0 and (self.wanted is None or self.wanted > 0)


def wanted_pods(kind: str, obj: Mapping[str, Any]) -> int:
    """Pods a workload wants: replicas (default 1), or a DaemonSet's desired count."""
    if kind == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def service_endpoints(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]],
    *, ignore: Sequence[str] = (), skip_namespaces: Sequence[str] = (),
    workloads: Sequence[tuple[str, Mapping[str, Any]]] = (),
    pods: Sequence[Mapping[str, Any]] = (),
) -> list[ServiceEndpoints]:
    """Ready/not-ready endpoint counts of every Service that has a selector, with the pods
    its workloads want (``workloads`` as (kind, object)) and the pods it matches.

    Selector-less Services (endpoints managed by hand), ExternalName Services, the ``ignore``
    list (``namespace/name``), ``skip_namespaces`` and netdoctor's own Services (labelled
    ``app.kubernetes.io/managed-by=netdoctor``, of any run) are left out.
    """
    counts: dict[tuple[str, str], list[int]] = {}
    for sl in slices:
        owner = (sl["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if not owner:
            continue
        c = counts.setdefault((sl["metadata"]["namespace"], owner), [0, 0])
        for ep in sl.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            c[0 if ready is not False else 1] += len(ep.get("addresses") or [])
    found: list[ServiceEndpoints] = []
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec", {})
        ref = f"{meta['namespace']}/{meta['name']}"
        selector = spec.get("selector") or {}
        if not selector or spec.get("type") == "ExternalName" or ref in ignore \
                or meta["namespace"] in skip_namespaces \
                or (meta.get("labels") or {}).get(MANAGED_BY) == MANAGER:
            # A run's own Services (this run's, a concurrent run's, a killed run's leftovers,
            # which the leftovers report names) are no user workload's fault.
            continue
        ready, not_ready = counts.get((meta["namespace"], meta["name"]), [0, 0])
        backing = [(k, o) for k, o in workloads if o["metadata"].get("namespace") ==
                   meta["namespace"] and selector.items() <= template_labels(o).items()]
        matched = sum(1 for p in pods if p["metadata"].get("namespace") == meta["namespace"]
                      and selector.items() <= ((p["metadata"].get("labels") or {}).items()))
        found.append(ServiceEndpoints(
            meta["namespace"], meta["name"],
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())), ready, not_ready,
            wanted=sum(wanted_pods(k, o) for k, o in backing) if backing else None,
            pods=matched, workloads=tuple(f"{k} {o['metadata']['name']}" for k, o in backing)))
    return sorted(found, key=lambda s: s.ref)


async def _optional(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    try:
        return await cluster.list(kind)
    except Exception:  # a cluster (or RBAC) without this kind: no such workloads to count
        return []


async def read_workloads(cluster: Cluster) -> list[tuple[str, dict[str, Any]]]:
    """Deployments, StatefulSets and DaemonSets as (kind, object)."""
    deps, sets, daemons = await asyncio.gather(
        cluster.list("deployments"), _optional(cluster, "statefulsets"),
        cluster.list("daemonsets"))
    return ([("Deployment", d) for d in deps] + [("StatefulSet", s) for s in sets]
            + [("DaemonSet", d) for d in daemons])


async def read_services(cluster: Cluster, ignore: Sequence[str], skip: Sequence[str]
                        ) -> list[ServiceEndpoints]:
    """Services with a selector, their endpoint counts (from EndpointSlices) and what their
    workloads want."""
    services, slices, workloads, pods = await asyncio.gather(
        cluster.list("services"), cluster.list("endpointslices"), read_workloads(cluster),
        cluster.list("pods"))
    return service_endpoints(services, slices, ignore=ignore, skip_namespaces=skip,
                             workloads=workloads, pods=pods)


@dataclass(frozen=True)
class FlannelCoverage:
    """Flannel DaemonSet counts against the nodes that should run it."""

    desired: int
    ready: int
    nodes: tuple[str, ...]
    """Nodes a CNI agent must run on: every Ready node (CNI agents tolerate all taints)."""
    nodes_without_ready_pod: tuple[str, ...]


def flannel_coverage(state: ComponentState, nodes: Sequence[NodeInfo]) -> FlannelCoverage:
    """Which Ready nodes lack a Ready Flannel pod."""
    ready_nodes = tuple(n.name for n in nodes if n.ready)
    covered = {p.node for p in state.pods if p.ready}
    return FlannelCoverage(state.desired, state.ready_count, ready_nodes,
                           tuple(n for n in ready_nodes if n not in covered))


async def read_all_components(cluster: Cluster, profile: ClusterProfile,
                              recent: float | None = None) -> dict[str, ComponentState]:
    """CoreDNS (with ``i/o timeout`` log lines), kube-proxy and the CNI's agent (``flannel``
    where Flannel is the CNI, and ``cni-agent`` whatever the CNI), concurrently."""
    statuses = await asyncio.gather(*(read_workload_status(cluster, w) for w in
                                      (profile.coredns, profile.kube_proxy, profile.cni_agent)))
    coredns, proxy, agent = await asyncio.gather(
        read_component(cluster, profile.coredns, logs=IO_TIMEOUT, status=statuses[0],
                       recent=recent),
        read_component(cluster, profile.kube_proxy, status=statuses[1], recent=recent),
        read_component(cluster, profile.cni_agent, status=statuses[2], recent=recent))
    flannel = agent if profile.flannel is not None else ComponentState(None, (), {}, {})
    return {"coredns": coredns, "kube-proxy": proxy, "flannel": flannel, "cni-agent": agent}
