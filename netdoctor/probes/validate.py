"""The validate pass: the echo workload and node probes, then every path measured at once.

Two phases, so that the slow part (creating pods) overlaps the diagnose pass that creates
the pod probes: :func:`prepare` deploys the echo workload and the node probes and reads the
node facts; :func:`measure_paths` then runs every measurement through the pod probes and the
node probes concurrently, and reads pods, Services and component logs for the root causes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import kr8s.asyncio.objects as k8s

from netdoctor.cluster import echo as echo_mod
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Cluster, bounded
from netdoctor.cluster.exec import ExecTarget, Measured, asked_again
from netdoctor.cluster.profile import ClusterProfile, Workload
from netdoctor.probes.coverage import Coverage, widen
from netdoctor.probes.network import PairId
from netdoctor.probes.observe import cluster_name
from netdoctor.probes.parsers import CurlResult, LookupResult, PingResult
from netdoctor.probes.paths import FactsResult, Runner, Series
from netdoctor.rootcause.facts import NodeFacts

SHORT_NAME = "kubernetes.default"
LOG_TAIL = 200


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
    """Each node to itself and the plan's coverage of the others (every pair without one)."""
    chosen = set(plan.coverage.pairs) if plan.coverage is not None else None
    return [PairId(a, b) for a in nodes for b in nodes
            if a == b or chosen is None or PairId(a, b) in chosen]


async def _guard(v: Validation, key: str, aw: Awaitable[None]) -> None:
    try:
        await aw
    except Exception as exc:  # recorded: the checks that need it skip with this reason
        v.errors[key] = f"{type(exc).__name__}: {exc}"


async def start_node_probes(cluster: Cluster, probes: pods.ProbeSet, nodes: Sequence[str],
                            image: str, timeout: float) -> None:
    """One privileged hostNetwork probe per node (read-only view of the node at /host)."""
    created = [k8s.Pod(pods.probe_pod_spec(node=n, namespace=probes.namespace, image=image,
                                           run_id=probes.run_id, node_level=True,
                                           placement=probes.placement),
                       api=cluster.api) for n in nodes]
    if created:
        await pods.admitted(cluster, probes.namespace, created[0].raw)

    async def create(pod: k8s.Pod) -> None:
        await bounded(pod.create(), cluster.timeout, f"create pod {probes.namespace}/{pod.name}")
        probes.created.append(("pod", pod.name))

    await asyncio.gather(*(create(p) for p in created))
    await pods.wait_ready(cluster, probes, created, timeout)


async def _namespace_ready(cluster: Cluster, namespace: str, deadline: float) -> None:
    # The diagnose pass creates the run's namespace; objects in it wait until it exists.
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    pauses = pods.poll_pauses()
    while loop.time() < end:
        if any(o["metadata"]["name"] == namespace for o in await cluster.list("namespaces")):
            return
        await asyncio.sleep(next(pauses))


async def prepare(cluster: Cluster, profile: ClusterProfile, plan: ValidatePlan,
                  v: Validation) -> Validation:
    """Deploy the echo workload, start node probes and read every node's facts."""
    nodes = [n.name for n in profile.ready_nodes]
    await _namespace_ready(cluster, plan.namespace, plan.setup_timeout)
    runner = Runner(plan.probe_image, plan.probe_timeout)

    async def echo_side() -> None:
        await echo_mod.deploy(cluster, v.echo, nodes, plan.setup_timeout)
        await echo_mod.wait_endpoints(cluster, v.echo)

    await asyncio.gather(_guard(v, "node-probes", read_nodes(cluster, nodes, plan, v, runner)),
                         _guard(v, "echo", echo_side()))
    return v


async def read_nodes(cluster: Cluster, nodes: Sequence[str], plan: ValidatePlan, v: Validation,
                     runner: Runner) -> None:
    """Start the node probes and read every node's facts into ``v``."""
    if not plan.node_probes:
        v.errors["node-probes"] = NO_NODE_PROBES
        return
    await start_node_probes(cluster, v.node_probes, nodes, plan.node_probe_image,
                            plan.setup_timeout)
    ready = v.node_probes.ready
    runs = await asyncio.gather(*(runner.facts(ready[n]) for n in ready))
    v.facts_runs = dict(zip(ready, runs, strict=True))
    # Facts of a node whose script never reported are unknown, not empty: a missing
    # flannel.1 that was never read must not become a finding.
    v.facts = {n: m.result.facts for n, m in v.facts_runs.items() if m.result.conclusive}


async def prepare_causes(cluster: Cluster, profile: ClusterProfile, plan: ValidatePlan,
                         v: Validation) -> Validation:
    """Without the validate pass: only the node probes and their facts, for the root causes
    of a diagnose run (no echo workload, no paths)."""
    await _namespace_ready(cluster, plan.namespace, plan.setup_timeout)
    nodes = [n.name for n in profile.ready_nodes]
    await _guard(v, "node-probes", read_nodes(cluster, nodes, plan, v,
                                              Runner(plan.probe_image, plan.probe_timeout)))
    return v


async def read_for_causes(cluster: Cluster, profile: ClusterProfile, v: Validation) -> None:
    """Pods, Services and component logs, as the root-cause ranking reads them."""
    await _guard(v, "cluster-state", read_objects(cluster, v))
    await _guard(v, "logs", read_logs(cluster, profile, v))


def pod_mtu(facts: NodeFacts | None, eth0: int) -> tuple[int, str]:
    """The pod MTU: Flannel's FLANNEL_MTU when known, else the probe's eth0."""
    if facts is not None and facts.flannel_mtu:
        return facts.flannel_mtu, "FLANNEL_MTU in /run/flannel/subnet.env"
    return eth0, "eth0 of the probe pod"


async def measure_paths(cluster: Cluster, profile: ClusterProfile, v: Validation,
                        probes: Mapping[str, ExecTarget]) -> Validation:
    """Every path measured at once, then pods, Services and logs read for the root causes."""
    plan = v.plan
    loop = asyncio.get_running_loop()
    run = Runner(plan.probe_image, plan.probe_timeout)
    n = plan.repeats
    echo_ips = {node: p.ip for node, p in v.echo.pods.items() if p.ip}
    nodes = [x.name for x in profile.ready_nodes]
    pairs = planned_pairs(plan, nodes)
    cross = [p for p in pairs if p.source != p.target]

    async def api_ip() -> None:
        svc = [s for s in await cluster.list("services", namespace="default")
               if s["metadata"]["name"] == "kubernetes"]
        v.api_ip = str(svc[0]["spec"].get("clusterIP", "")) if svc else ""

    async def pod_paths_of(want: Sequence[PairId]) -> None:
        go = [p for p in want if p.source in probes and p.target in echo_ips]
        # pings and GETs issued together: the batcher puts a pod's commands in one exec
        pings, https = await asyncio.gather(
            asyncio.gather(*(run.series(partial(run.ping, probes[p.source], echo_ips[p.target]),
                                        n) for p in go)),
            asyncio.gather(*(run.http_rows(
                probes[src], [f"http://{echo_ips[p.target]}:{echo_mod.ECHO_PORT}/hostname"
                              for p in row], n) for src, row in _rows(go))))
        v.pod_ping.update(zip(go, pings, strict=True))
        v.pod_http.update({p: s for (_, row), series in zip(_rows(go), https, strict=True)
                           for p, s in zip(row, series, strict=True)})

    async def pod_paths() -> None:
        await pod_paths_of(pairs)
        if plan.coverage is None:
            return
        # A sampled path lost packets: measure its nodes against every peer, so the
        # failure can still be pinned to a node or a pair.
        failed = [p for p in pairs if p.source != p.target and (
            _lost(v.pod_ping.get(p)) or _lost(v.pod_http.get(p)))]
        extra = widen(plan.coverage, failed)
        await pod_paths_of(extra)
        v.widened = tuple(p for p in extra if p in v.pod_ping)

    async def programmed() -> None:
        # Paths through a Service wait until kube-proxy has had its time to program the
        # echo endpoints; pod paths, DNS and MTU are measured meanwhile.
        if v.echo.endpoints_at:
            delay = v.echo.endpoints_at + echo_mod.KUBE_PROXY_SETTLE - loop.time()
            await asyncio.sleep(max(delay, 0))

    async def service_paths() -> None:
        await api_ip()
        await programmed()
        url = f"http://{v.echo.cluster_ip}:{echo_mod.SERVICE_PORT}/hostname"
        src = list(probes)
        jobs: list[Awaitable[Any]] = []
        if v.echo.cluster_ip:
            jobs.append(asyncio.gather(*(run.http_series(probes[s], url, n) for s in src)))
        if v.api_ip:
            jobs.append(asyncio.gather(*(run.http(probes[s], f"https://{v.api_ip}:443/version",
                                                  insecure=True) for s in src)))
        done = await asyncio.gather(*jobs)
        if v.echo.cluster_ip:
            v.service_http = dict(zip(src, done.pop(0), strict=True))
        if v.api_ip:
            v.api_http = dict(zip(src, done.pop(0), strict=True))

    async def dns() -> None:
        resolv = (await run.resolv_conf(probes[sorted(probes)[0]])).result if probes else None
        domain = resolv.cluster_domain if resolv and resolv.conclusive else ""
        server = profile.dns_service_ip or (resolv.nameserver if resolv else "")
        cases = [c for node in probes for c in dns_cases(node, server, domain, v.echo,
                                                         coredns_ips(v, profile),
                                                         plan.external_name,
                                                         replica_port(v, profile))]
        done = await asyncio.gather(*(run.dns(probes[c.node], c.name, c.server or None,
                                              c.port) for c in cases))
        v.dns = dict(zip(cases, done, strict=True))

    async def egress() -> None:
        if not plan.external_url:
            return
        insecure = urlsplit(plan.external_url).scheme == "https"
        done = await asyncio.gather(*(run.http(probes[s], plan.external_url, insecure=insecure)
                                      for s in probes))
        v.egress_http = dict(zip(probes, done, strict=True))

    async def nodeports() -> None:
        ips = {x.name: x.internal_ip for x in profile.ready_nodes}
        go = [p for p in pairs if p.source in v.node_probes.ready and ips.get(p.target)]
        if not v.echo.node_port:
            return
        await programmed()
        done = await asyncio.gather(*(run.http_rows(
            v.node_probes.ready[src], [f"http://{ips[p.target]}:{v.echo.node_port}/hostname"
                                       for p in row], n) for src, row in _rows(go)))
        v.nodeport = {p: s for (_, row), series in zip(_rows(go), done, strict=True)
                      for p, s in zip(row, series, strict=True)}

    async def mtu() -> None:
        # eth0 is read only where Flannel's MTU is unknown: a round trip before the MTU
        # pings could start, and its value would not be used.
        ask = [s for s in probes if not (v.facts.get(s) and v.facts[s].flannel_mtu)]
        eth0 = dict(zip(ask, await asyncio.gather(*(run.eth0_mtu(probes[s]) for s in ask)),
                        strict=True))
        v.mtu = {s: pod_mtu(v.facts.get(s), eth0[s].result.mtu if s in eth0 else 0)
                 for s in probes}
        go = [p for p in cross if p.source in probes and p.target in probes
              and v.mtu[p.source][0] > 0]
        done = await asyncio.gather(*(run.mtu_ping(probes[p.source], probes[p.target].ip,
                                                   v.mtu[p.source][0]) for p in go))
        v.mtu_ping = dict(zip(go, done, strict=True))

    await _guard(v, "cluster-state", read_objects(cluster, v))
    await asyncio.gather(*(_guard(v, key, job) for key, job in (
        ("pod-paths", pod_paths()), ("service-paths", service_paths()), ("dns", dns()),
        ("egress", egress()), ("nodeport", nodeports()), ("mtu", mtu()))))
    await _guard(v, "dns-again", _ask_again(run, v, probes))
    await _guard(v, "logs", read_logs(cluster, profile, v))
    return v


async def _ask_again(run: Runner, v: Validation, probes: Mapping[str, ExecTarget]) -> None:
    """Ask each lookup that failed during the burst of measurements once more, after it.

    One lookup of one try with a short deadline, made while every path of the cluster is
    measured at once, can miss its answer on a loaded node; asked again alone it tells a
    slow moment from a broken resolver. Both attempts are kept as its evidence.
    """
    failed = [c for c, m in v.dns.items() if m.result.conclusive and not m.result.ok
              and c.node in probes]
    again = await asyncio.gather(*(run.dns(probes[c.node], c.name, c.server or None, c.port)
                                   for c in failed))
    for case, second in zip(failed, again, strict=True):
        v.dns[case] = asked_again(v.dns[case], second)


def _lost(series: Series[Any] | None) -> bool:
    """Some run of the series answered with a failure (not merely went unobserved)."""
    return series is not None and any(m.result.conclusive and not m.result.ok
                                      for m in series.runs)


def _rows(pairs: Sequence[PairId]) -> list[tuple[str, list[PairId]]]:
    """The pairs grouped by source node, in order: one matrix row per source."""
    rows: dict[str, list[PairId]] = {}
    for p in pairs:
        rows.setdefault(p.source, []).append(p)
    return list(rows.items())


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


def dns_cases(node: str, dns_ip: str, domain: str, echo: echo_mod.Echo,
              replicas: Mapping[str, str], external: str, port: int = 53) -> list[DnsCase]:
    """The lookups made from one node's probe; names in the cluster domain only when the
    probe's resolv.conf named one (``svc.<domain>`` in its search path)."""
    cases = []
    name = cluster_name(domain) if domain else ""
    if dns_ip:
        if name:
            cases += [DnsCase(node, "cluster", name, dns_ip),
                      DnsCase(node, "service", echo.dns_name(domain), dns_ip)]
        if external:
            cases.append(DnsCase(node, "external", external, dns_ip))
    if name:
        cases += [DnsCase(node, f"replica {rep}", name, ip, port)
                  for rep, ip in sorted(replicas.items()) if ip]
    cases.append(DnsCase(node, "search-path", SHORT_NAME, ""))
    return cases


async def _log_tail(cluster: Cluster, namespace: str, name: str) -> str:
    out = []
    for previous in ("true", "false"):
        try:
            resp = await cluster.request("GET", f"pods/{name}/log", namespace=namespace,
                                         params={"tailLines": str(LOG_TAIL),
                                                 "previous": previous},
                                         what=f"logs of {namespace}/{name}")
            out.append(resp.text)
        except Exception:  # no previous container: a 400 on real clusters
            continue
    return "\n".join(out)


async def read_objects(cluster: Cluster, v: Validation) -> None:
    """All pods and Services (placement, CoreDNS replicas, selectors)."""
    v.pods, v.services = await asyncio.gather(cluster.list("pods"), cluster.list("services"))


async def read_logs(cluster: Cluster, profile: ClusterProfile, v: Validation) -> None:
    """CoreDNS log tails and kube-proxy log tails per node."""

    def members(w: Workload | None) -> list[dict[str, Any]]:
        return [p for p in v.pods if w is not None and w.selects(p)]

    dns_pods, proxy_pods = members(profile.coredns), members(profile.kube_proxy)
    tails = await asyncio.gather(*(_log_tail(cluster, p["metadata"]["namespace"],
                                             p["metadata"]["name"])
                                   for p in dns_pods + proxy_pods))
    v.coredns_logs = "\n".join(tails[:len(dns_pods)])
    v.kube_proxy_logs = {str(p["spec"].get("nodeName", "")): t
                         for p, t in zip(proxy_pods, tails[len(dns_pods):], strict=True)}
