"""The validate pass: the echo workload and node probes, then every path measured at once.

Two phases, so that the slow part (creating pods) overlaps the diagnose pass that creates
the pod probes: :func:`prepare` deploys the echo workload and the node probes and reads the
node facts; :func:`netdoctor.probes.burst.measure_paths` then runs every measurement through
the pod probes and the node probes concurrently. This module holds the plan, what the pass
found (:class:`Validation`) and the reads both phases share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from netdoctor.cluster import echo as echo_mod
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Cluster
from netdoctor.cluster.exec import Measured
from netdoctor.cluster.profile import ClusterProfile, Workload
from netdoctor.probes.components import log_tails, pod_state
from netdoctor.probes.coverage import Coverage
from netdoctor.probes.network import PairId, Scope
from netdoctor.probes.parsers import CurlResult, LookupResult, PingResult
from netdoctor.probes.paths import FactsResult, Runner, Series
from netdoctor.rootcause.facts import NodeFacts

MEASUREMENTS: Mapping[str, str] = {
    "pod-paths": "ping and HTTP GET from each node's probe pod to the echo pods of its peers",
    "service-paths": "HTTP through the echo Service's ClusterIP and the API's ClusterIP",
    "nodeport": "HTTP to the echo NodePort on each peer's InternalIP, from the node probes",
    "dns": "lookups through the cluster DNS, at each replica, of the external name and of a "
           "short name through the search path",
    "egress": "HTTP GET of the external URL from every node",
    "mtu": "a don't-fragment ping of the pod MTU to each peer's probe pod",
}
"""What the validate pass can measure, by the name a check declares with
``@pytest.mark.measures(...)``. Node facts, pods, Services and component logs are always
read: they complete the cluster profile and feed the root-cause ranking."""
ECHO_USERS = frozenset({"pod-paths", "service-paths", "nodeport", "dns"})
"""Measurements that need the echo workload (its pods, its Service, its DNS name)."""
PAIR_MEASUREMENTS = frozenset({"pod-paths", "nodeport", "mtu"})
"""Measurements made per node pair (the rest per node)."""

NO_NODE_PROBES = "not measured: --no-node-probes (node probes need hostNetwork, privileged and " \
    "the node's root; this run uses unprivileged probes only)"


@dataclass(frozen=True)
class ValidatePlan:
    """What the validate pass measures and with which settings."""

    namespace: str
    run_id: str
    probe_image: str
    node_probe_image: str
    probe_timeout: float
    setup_timeout: float
    repeats: int = 3
    external_name: str = ""
    """Resolved through the cluster DNS ("" when offline)."""
    external_url: str = ""
    """Fetched from every pod ("" when offline)."""
    node_probes: bool = True
    """Start the privileged node probes (off with ``--no-node-probes``)."""
    coverage: Coverage | None = None
    """The node pairs to measure besides each node to itself (None: every ordered pair)."""
    measures: frozenset[str] = frozenset(MEASUREMENTS)
    """The measurements the run's checks read (:data:`MEASUREMENTS`); the rest is skipped."""
    scope: Scope | None = None
    """Only these nodes' and pairs' measurements (None: every node and planned pair)."""

    def keeps_node(self, node: str) -> bool:
        """Whether per-node measurements are made from ``node``."""
        return self.scope is None or node in self.scope.nodes

    def keeps_pair(self, pair: PairId) -> bool:
        """Whether the planned ``pair`` is measured."""
        return self.scope is None or pair in self.scope.pairs

    @property
    def echo_needed(self) -> bool:
        """Whether any chosen measurement needs the echo workload."""
        return bool(self.measures & ECHO_USERS)


@dataclass(frozen=True)
class DnsCase:
    """One lookup: from which node, what kind, which name, at which server ("" = resolv.conf)."""

    node: str
    kind: str
    name: str
    server: str
    port: int = 53

    def __str__(self) -> str:
        at = f"{self.server}:{self.port}" if self.port != 53 else self.server
        return f"{self.name} @{at or 'resolv.conf'}"


@dataclass
class Validation:
    """Everything the validate checks and the root-cause ranking read."""

    plan: ValidatePlan
    echo: echo_mod.Echo
    node_probes: pods.ProbeSet
    facts: dict[str, NodeFacts] = field(default_factory=dict)
    facts_runs: dict[str, Measured[FactsResult]] = field(default_factory=dict)
    api_ip: str = ""
    pod_ping: dict[PairId, Series[PingResult]] = field(default_factory=dict)
    pod_http: dict[PairId, Series[CurlResult]] = field(default_factory=dict)
    service_http: dict[str, Series[CurlResult]] = field(default_factory=dict)
    api_http: dict[str, Measured[CurlResult]] = field(default_factory=dict)
    dns: dict[DnsCase, Measured[LookupResult]] = field(default_factory=dict)
    egress_http: dict[str, Measured[CurlResult]] = field(default_factory=dict)
    nodeport: dict[PairId, Series[CurlResult]] = field(default_factory=dict)
    mtu: dict[str, tuple[int, str]] = field(default_factory=dict)
    """node -> (pod MTU, where it came from)."""
    mtu_ping: dict[PairId, Measured[PingResult]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    coredns_logs: str = ""
    kube_proxy_logs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    widened: tuple[PairId, ...] = ()
    """Pod paths measured beyond the sampled ones, around sampled paths that failed."""


def planned_pairs(plan: ValidatePlan, nodes: Sequence[str]) -> list[PairId]:
    """Each node to itself and the plan's coverage of the others (every pair without one),
    within the plan's scope."""
    chosen = set(plan.coverage.pairs) if plan.coverage is not None else None
    return [p for p in (PairId(a, b) for a in nodes for b in nodes)
            if (p.source == p.target or chosen is None or p in chosen) and plan.keeps_pair(p)]


def scope_statement(plan: ValidatePlan, nodes: Sequence[str]) -> str:
    """How the plan's scope narrows the pass over ``nodes`` ("" when it leaves nothing out).

    Example:
        >>> plan = ValidatePlan("ns", "r", "img", "img", 2.0, 60.0, measures=frozenset({"dns"}),
        ...                     scope=Scope(frozenset({"a"})))
        >>> scope_statement(plan, ["a", "b", "c"])
        'per-node measurements from 1 of 3 nodes'
    """
    if plan.scope is None:
        return ""
    return ", ".join(plan.scope.left_out(
        nodes, planned_pairs(replace(plan, scope=None), nodes),
        what_nodes="per-node measurements" if plan.measures - PAIR_MEASUREMENTS else "",
        what_pairs="pair measurements" if plan.measures & PAIR_MEASUREMENTS else ""))


async def guarded(v: Validation, key: str, aw: Awaitable[None]) -> None:
    try:
        await aw
    except Exception as exc:  # recorded: the checks that need it skip with this reason
        v.errors[key] = f"{type(exc).__name__}: {exc}"


async def start_node_probes(cluster: Cluster, probes: pods.ProbeSet, nodes: Sequence[str],
                            image: str, timeout: float) -> None:
    """One privileged hostNetwork probe per node (read-only view of the node at /host)."""
    created = [pods.probe_pod_spec(node=n, namespace=probes.namespace, image=image,
                                   run_id=probes.run_id, node_level=True,
                                   placement=probes.placement) for n in nodes]
    await pods.create_pods(cluster, probes, created)
    await pods.wait_ready(cluster, probes, created, timeout)


NamespaceReady = Callable[[], Awaitable[None]]
"""Creates the run's namespace once, whichever pass asks first
(:meth:`netdoctor.cluster.session.ClusterSession.ensure_namespace`)."""


async def prepare(cluster: Cluster, profile: ClusterProfile, plan: ValidatePlan,
                  v: Validation, namespace: NamespaceReady) -> Validation:
    """Deploy the echo workload, start node probes and read every node's facts."""
    nodes = [n.name for n in profile.ready_nodes]
    runner = Runner(plan.probe_image, plan.probe_timeout)

    async def echo_side() -> None:
        if not plan.echo_needed:
            return  # no chosen check reads a path to the echo workload
        await namespace()
        await echo_mod.deploy(cluster, v.echo, nodes, plan.setup_timeout)
        await echo_mod.wait_endpoints(cluster, v.echo)

    await asyncio.gather(
        guarded(v, "node-probes", read_nodes(cluster, nodes, plan, v, runner, namespace)),
        guarded(v, "echo", echo_side()))
    return v


async def read_nodes(cluster: Cluster, nodes: Sequence[str], plan: ValidatePlan, v: Validation,
                     runner: Runner, namespace: NamespaceReady) -> None:
    """Start the node probes (in the run's namespace, created if no pass has yet) and read
    every node's facts into ``v``."""
    if not plan.node_probes:
        v.errors["node-probes"] = NO_NODE_PROBES
        return
    await namespace()
    await start_node_probes(cluster, v.node_probes, nodes, plan.node_probe_image,
                            plan.setup_timeout)
    ready = v.node_probes.ready
    runs = await asyncio.gather(*(runner.facts(ready[n]) for n in ready))
    v.facts_runs = dict(zip(ready, runs, strict=True))
    # Facts of a node whose script never reported are unknown, not empty: a missing
    # flannel.1 that was never read must not become a finding.
    v.facts = {n: m.result.facts for n, m in v.facts_runs.items() if m.result.conclusive}


async def prepare_causes(cluster: Cluster, profile: ClusterProfile, plan: ValidatePlan,
                         v: Validation, namespace: NamespaceReady) -> Validation:
    """Without the validate pass: only the node probes and their facts, for the root causes
    of a diagnose run (no echo workload, no paths)."""
    nodes = [n.name for n in profile.ready_nodes]
    await guarded(v, "node-probes", read_nodes(cluster, nodes, plan, v,
                                              Runner(plan.probe_image, plan.probe_timeout),
                                              namespace))
    return v


async def read_for_causes(cluster: Cluster, profile: ClusterProfile, v: Validation) -> None:
    """Pods, Services and component logs, as the root-cause ranking reads them."""
    await guarded(v, "cluster-state", read_objects(cluster, v))
    await guarded(v, "logs", read_logs(cluster, profile, v))


def pod_mtu(facts: NodeFacts | None, eth0: int) -> tuple[int, str]:
    """The pod MTU: Flannel's FLANNEL_MTU when known, else the probe's eth0."""
    if facts is not None and facts.flannel_mtu:
        return facts.flannel_mtu, "FLANNEL_MTU in /run/flannel/subnet.env"
    return eth0, "eth0 of the probe pod"


def coredns_ips(v: Validation, profile: ClusterProfile) -> dict[str, str]:
    """CoreDNS pod name -> pod IP (from the pods read by :func:`read_objects`)."""
    w = profile.coredns
    if w is None:
        return {}
    return {p["metadata"]["name"]: str(p.get("status", {}).get("podIP") or "")
            for p in v.pods if w.selects(p)}


def replica_port(v: Validation, profile: ClusterProfile) -> int:
    """The port a DNS replica answers on: the DNS Service's port 53 ``targetPort``, a named
    one looked up in the replicas' containers (OpenShift's CoreDNS listens on 5353)."""
    ns, _, name = profile.dns_service.partition("/")
    svc = next((s for s in v.services if (s["metadata"].get("namespace"),
                                          s["metadata"]["name"]) == (ns, name)), None)
    ports = [p for p in ((svc or {}).get("spec") or {}).get("ports") or []
             if p.get("port") == 53 and p.get("protocol", "UDP") == "UDP"]
    target = ports[0].get("targetPort", 53) if ports else 53
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    names = set(coredns_ips(v, profile))
    return next((int(cp["containerPort"]) for pod in v.pods if pod["metadata"]["name"] in names
                 for c in pod.get("spec", {}).get("containers") or []
                 for cp in c.get("ports") or [] if cp.get("name") == target), 53)


async def _log_tail(cluster: Cluster, pod: Mapping[str, Any]) -> str:
    try:
        return "\n".join(await log_tails(cluster, pod_state(pod)))
    except Exception:  # logs forbidden: the checks that need them say so
        return ""


async def read_objects(cluster: Cluster, v: Validation) -> None:
    """All pods and Services (placement, CoreDNS replicas, selectors)."""
    v.pods, v.services = await asyncio.gather(cluster.list("pods"), cluster.list("services"))


async def read_logs(cluster: Cluster, profile: ClusterProfile, v: Validation) -> None:
    """CoreDNS log tails and kube-proxy log tails per node."""

    def members(w: Workload | None) -> list[dict[str, Any]]:
        return [p for p in v.pods if w is not None and w.selects(p)]

    dns_pods, proxy_pods = members(profile.coredns), members(profile.kube_proxy)
    tails = await asyncio.gather(*(_log_tail(cluster, p) for p in dns_pods + proxy_pods))
    v.coredns_logs = "\n".join(tails[:len(dns_pods)])
    v.kube_proxy_logs = {str(p["spec"].get("nodeName", "")): t
                         for p, t in zip(proxy_pods, tails[len(dns_pods):], strict=True)}
