"""Component state read from API objects: CoreDNS, kube-proxy, Flannel, Service endpoints.

Pure functions turn listed objects into small frozen findings (unit-testable); the async
readers list what they need, concurrently.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netdoctor.cluster.client import Cluster
from netdoctor.cluster.probes import event_lines, pod_problem, pod_ready
from netdoctor.cluster.profile import ClusterProfile, NodeInfo, Workload

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

    @property
    def crashlooping(self) -> bool:
        """The kubelet is backing off restarts of a container."""
        return self.waiting_reason == "CrashLoopBackOff"


def pod_state(obj: Mapping[str, Any]) -> PodState:
    """A :class:`PodState` from a Pod object."""
    status = obj.get("status", {})
    statuses = status.get("containerStatuses") or []
    waiting = next(((cs.get("state") or {}).get("waiting", {}).get("reason", "")
                    for cs in statuses if (cs.get("state") or {}).get("waiting")), "")
    ready = pod_ready(obj)
    return PodState(
        namespace=obj["metadata"]["namespace"], name=obj["metadata"]["name"],
        node=obj.get("spec", {}).get("nodeName") or "", phase=status.get("phase", ""),
        ready=ready, restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses),
        waiting_reason=waiting, problem="" if ready else pod_problem(obj),
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

    def pods_on(self, node: str) -> tuple[PodState, ...]:
        """The component's pods on ``node``."""
        return tuple(p for p in self.pods if p.node == node)


def _events_by_pod(events: Iterable[Mapping[str, Any]], names: set[str]
                   ) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        name = (e.get("involvedObject") or {}).get("name", "")
        if name in names:
            grouped.setdefault(name, []).append(e)
    return {name: event_lines(items) for name, items in grouped.items()}


async def _log_matches(cluster: Cluster, pod: PodState, pattern: re.Pattern[str]
                       ) -> tuple[str, ...]:
    found: list[str] = []
    for previous in ("false", "true"):
        try:
            resp = await cluster.request(
                "GET", f"pods/{pod.name}/log", namespace=pod.namespace,
                params={"tailLines": str(LOG_TAIL), "previous": previous},
                what=f"logs of {pod.namespace}/{pod.name}")
        except Exception as exc:
            # No previous container is a 400 on real clusters; forbidden is reported by caller.
            if "forbidden" in str(exc).lower():
                raise
            continue
        found += [ln for ln in resp.text.splitlines() if pattern.search(ln)]
    return tuple(dict.fromkeys(found))


async def read_component(
    cluster: Cluster, workload: Workload | None, *, logs: re.Pattern[str] | None = None,
    status: Mapping[str, Any] | None = None,
) -> ComponentState:
    """Pods, Events and matching log lines of a component."""
    if workload is None:
        return ComponentState(None, (), {}, {})
    pods_raw, events = await asyncio.gather(
        cluster.list("pods", namespace=workload.namespace, selector=workload.selector),
        cluster.list("events", namespace=workload.namespace))
    pods = tuple(sorted((pod_state(p) for p in pods_raw), key=lambda p: (p.node, p.name)))
    by_pod = _events_by_pod(events, {p.name for p in pods})
    lines: dict[str, tuple[str, ...]] = {}
    error = ""
    if logs is not None:
        try:
            found = await asyncio.gather(*(_log_matches(cluster, p, logs) for p in pods))
            lines = {p.name: f for p, f in zip(pods, found, strict=True) if f}
        except Exception as exc:
            error = f"cannot read logs of {workload.ref}: {exc}"
    st = status or {}
    return ComponentState(workload, pods, by_pod, lines,
                          desired=int(st.get("desiredNumberScheduled") or st.get("replicas") or 0),
                          ready_count=int(st.get("numberReady") or st.get("readyReplicas") or 0),
                          error=error)


async def read_workload_status(cluster: Cluster, workload: Workload | None) -> dict[str, Any]:
    """The current ``status`` of a DaemonSet or Deployment (empty when gone)."""
    if workload is None:
        return {}
    kind = "daemonsets" if workload.kind == "DaemonSet" else "deployments"
    for obj in await cluster.list(kind, namespace=workload.namespace):
        if obj["metadata"]["name"] == workload.name:
            return dict(obj.get("status") or {})
    return {}


@dataclass(frozen=True)
class ServiceEndpoints:
    """A Service with a selector and how many ready endpoints it has."""

    namespace: str
    name: str
    selector: str
    ready: int
    not_ready: int

    @property
    def ref(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


def service_endpoints(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]],
    *, ignore: Sequence[str] = (), skip_namespaces: Sequence[str] = (),
) -> list[ServiceEndpoints]:
    """Ready/not-ready endpoint counts of every Service that has a selector.

    Selector-less Services (endpoints managed by hand), ExternalName Services, the ``ignore``
    list (``namespace/name``) and ``skip_namespaces`` are left out.
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
                or meta["namespace"] in skip_namespaces:
            continue
        ready, not_ready = counts.get((meta["namespace"], meta["name"]), [0, 0])
        found.append(ServiceEndpoints(meta["namespace"], meta["name"],
                                      ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
                                      ready, not_ready))
    return sorted(found, key=lambda s: s.ref)


async def read_services(cluster: Cluster, ignore: Sequence[str], skip: Sequence[str]
                        ) -> list[ServiceEndpoints]:
    """Services with a selector and their endpoint counts (from EndpointSlices)."""
    services, slices = await asyncio.gather(cluster.list("services"),
                                            cluster.list("endpointslices"))
    return service_endpoints(services, slices, ignore=ignore, skip_namespaces=skip)


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


async def read_all_components(cluster: Cluster, profile: ClusterProfile
                              ) -> dict[str, ComponentState]:
    """CoreDNS (with ``i/o timeout`` log lines), kube-proxy and Flannel, concurrently."""
    statuses = await asyncio.gather(*(read_workload_status(cluster, w) for w in
                                      (profile.coredns, profile.kube_proxy, profile.flannel)))
    coredns, proxy, flannel = await asyncio.gather(
        read_component(cluster, profile.coredns, logs=IO_TIMEOUT, status=statuses[0]),
        read_component(cluster, profile.kube_proxy, status=statuses[1]),
        read_component(cluster, profile.flannel, status=statuses[2]))
    return {"coredns": coredns, "kube-proxy": proxy, "flannel": flannel}
