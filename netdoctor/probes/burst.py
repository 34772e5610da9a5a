"""The burst: every path of a validate pass measured at once, through the pod probes and
the node probes; what failed asked again alone (:mod:`netdoctor.probes.again`); sampled
failures widened to every peer of their nodes; then pods, Services and component logs read
for the root causes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from netdoctor.cluster import echo as echo_mod
from netdoctor.cluster.client import Cluster
from netdoctor.cluster.exec import ExecTarget, Measured
from netdoctor.cluster.profile import ClusterProfile
from netdoctor.probes.again import OnceAgain, SeriesAgain, ask_again
from netdoctor.probes.coverage import widen
from netdoctor.probes.network import PairId
from netdoctor.probes.observe import cluster_name
from netdoctor.probes.parsers import CurlResult, LookupResult, PingResult
from netdoctor.probes.paths import Runner, Series
from netdoctor.probes.validate import (
    DnsCase,
    Validation,
    coredns_ips,
    guarded,
    planned_pairs,
    pod_mtu,
    read_logs,
    read_objects,
    replica_port,
)

K = TypeVar("K")
V = TypeVar("V")
SHORT_NAME = "kubernetes.default"
log = logging.getLogger("netdoctor.run")


async def measure_paths(cluster: Cluster, profile: ClusterProfile, v: Validation,
                        probes: Mapping[str, ExecTarget]) -> Validation:
    """Every path measured at once, what failed asked again alone, sampled failures widened,
    then pods, Services and logs read for the root causes."""
    plan = v.plan
    loop = asyncio.get_running_loop()
    run = Runner(plan.probe_image, plan.probe_timeout)
    n = plan.repeats
    echo_ips = {node: p.ip for node, p in v.echo.pods.items() if p.ip}
    nodes = [x.name for x in profile.ready_nodes]
    pairs = planned_pairs(plan, nodes)
    # Per-node measurements come from the nodes the selected checks read; pairs outside the
    # scope (widened around a failure) still use every probe.
    sources = {node: at for node, at in probes.items() if plan.keeps_node(node)}
    node_ips = {x.name: x.internal_ip for x in profile.ready_nodes}

    async def api_ip() -> None:
        svc = [s for s in await cluster.list("services", namespace="default")
               if s["metadata"]["name"] == "kubernetes"]
        v.api_ip = str(svc[0]["spec"].get("clusterIP", "")) if svc else ""

    def pings_of(want: Sequence[PairId]) -> Awaitable[dict[PairId, Series[PingResult]]]:
        go = [p for p in want if p.source in probes and p.target in echo_ips]
        return keyed(go, [run.series(partial(run.ping, probes[p.source], echo_ips[p.target]),
                                     n) for p in go])

    async def rows_of(want: Sequence[PairId], at: Mapping[str, ExecTarget],
                      url: Callable[[PairId], str]) -> dict[PairId, Series[CurlResult]]:
        done = await asyncio.gather(*(run.http_rows(at[src], [url(p) for p in row], n)
                                      for src, row in _rows(want)))
        return {p: s for (_, row), series in zip(_rows(want), done, strict=True)
                for p, s in zip(row, series, strict=True)}

    def https_of(want: Sequence[PairId]) -> Awaitable[dict[PairId, Series[CurlResult]]]:
        go = [p for p in want if p.source in probes and p.target in echo_ips]
        return rows_of(go, probes,
                       lambda p: f"http://{echo_ips[p.target]}:{echo_mod.ECHO_PORT}/hostname")

    def nodeports_of(want: Sequence[PairId]) -> Awaitable[dict[PairId, Series[CurlResult]]]:
        go = [p for p in want if p.source in v.node_probes.ready and node_ips.get(p.target)]
        return rows_of(go, v.node_probes.ready,
                       lambda p: f"http://{node_ips[p.target]}:{v.echo.node_port}/hostname")

    def service_of(src: Sequence[str]) -> Awaitable[dict[str, Series[CurlResult]]]:
        url = f"http://{v.echo.cluster_ip}:{echo_mod.SERVICE_PORT}/hostname"
        return keyed(src, [run.http_series(probes[s], url, n) for s in src])

    def api_of(src: Sequence[str]) -> Awaitable[dict[str, Measured[CurlResult]]]:
        return keyed(src, [run.http(probes[s], f"https://{v.api_ip}:443/version",
                                    insecure=True) for s in src])

    def egress_of(src: Sequence[str]) -> Awaitable[dict[str, Measured[CurlResult]]]:
        insecure = urlsplit(plan.external_url).scheme == "https"
        return keyed(src, [run.http(probes[s], plan.external_url, insecure=insecure)
                           for s in src])

    def mtu_of(want: Sequence[PairId]) -> Awaitable[dict[PairId, Measured[PingResult]]]:
        return keyed(want, [run.mtu_ping(probes[p.source], probes[p.target].ip,
                                         v.mtu[p.source][0]) for p in want])

    def dns_of(cases: Sequence[DnsCase]) -> Awaitable[dict[DnsCase, Measured[LookupResult]]]:
        return keyed(cases, [run.dns(probes[c.node], c.name, c.server or None, c.port)
                             for c in cases])

    async def pod_paths_of(want: Sequence[PairId]) -> None:
        # pings and GETs issued together: the batcher puts a pod's commands in one exec
        pings, https = await asyncio.gather(pings_of(want), https_of(want))
        v.pod_ping.update(pings)
        v.pod_http.update(https)

    async def programmed() -> None:
        # Paths through a Service wait until kube-proxy has had its time to program the
        # echo endpoints; pod paths, DNS and MTU are measured meanwhile.
        if v.echo.endpoints_at:
            delay = v.echo.endpoints_at + echo_mod.KUBE_PROXY_SETTLE - loop.time()
            await asyncio.sleep(max(delay, 0))

    async def service_paths() -> None:
        await api_ip()
        await programmed()
        src = list(sources)
        if v.echo.cluster_ip and v.api_ip:
            v.service_http, v.api_http = await asyncio.gather(service_of(src), api_of(src))
        elif v.echo.cluster_ip:
            v.service_http = await service_of(src)
        elif v.api_ip:
            v.api_http = await api_of(src)

    async def dns() -> None:
        resolv = (await run.resolv_conf(sources[sorted(sources)[0]])).result if sources else None
        domain = resolv.cluster_domain if resolv and resolv.conclusive else ""
        server = profile.dns_service_ip or (resolv.nameserver if resolv else "")
        v.dns = await dns_of([c for node in sources for c in dns_cases(
            node, server, domain, v.echo, coredns_ips(v, profile), plan.external_name,
            replica_port(v, profile))])

    async def egress() -> None:
        if plan.external_url:
            v.egress_http = await egress_of(list(sources))

    async def nodeports() -> None:
        if v.echo.node_port:
            await programmed()
            v.nodeport = await nodeports_of(pairs)

    async def mtu() -> None:
        # eth0 is read only where Flannel's MTU is unknown: a round trip before the MTU
        # pings could start, and its value would not be used.
        froms = {p.source for p in pairs}
        srcs = [s for s in probes if s in froms]
        ask = [s for s in srcs if not (v.facts.get(s) and v.facts[s].flannel_mtu)]
        eth0 = dict(zip(ask, await asyncio.gather(*(run.eth0_mtu(probes[s]) for s in ask)),
                        strict=True))
        v.mtu = {s: pod_mtu(v.facts.get(s), eth0[s].result.mtu if s in eth0 else 0)
                 for s in srcs}
        v.mtu_ping = await mtu_of([p for p in pairs if p.source != p.target
                                   and p.source in probes and p.target in probes
                                   and v.mtu[p.source][0] > 0])

    async def asked_again() -> None:
        asked = await ask_again([
            SeriesAgain(v.pod_ping, pings_of), SeriesAgain(v.pod_http, https_of),
            SeriesAgain(v.service_http, service_of), OnceAgain(v.api_http, api_of),
            OnceAgain(v.dns, dns_of), OnceAgain(v.egress_http, egress_of),
            SeriesAgain(v.nodeport, nodeports_of), OnceAgain(v.mtu_ping, mtu_of)])
        log.info("asked again alone: %d measurements that lost everything in the burst", asked)

    async def widened() -> None:
        if plan.coverage is None:
            return
        # A sampled path lost packets (also when asked again): measure its nodes against
        # every peer, so the failure can still be pinned to a node or a pair.
        failed = [p for p in pairs if p.source != p.target and (
            _lost(v.pod_ping.get(p)) or _lost(v.pod_http.get(p)))]
        extra = widen(plan.coverage, failed)
        await pod_paths_of(extra)
        await ask_again([SeriesAgain(v.pod_ping, pings_of, only=set(extra)),
                         SeriesAgain(v.pod_http, https_of, only=set(extra))])
        v.widened = tuple(p for p in extra if p in v.pod_ping)

    await guarded(v, "cluster-state", read_objects(cluster, v))
    jobs: dict[str, Callable[[], Awaitable[None]]] = {
        "pod-paths": partial(pod_paths_of, pairs), "service-paths": service_paths, "dns": dns,
        "egress": egress, "nodeport": nodeports, "mtu": mtu}
    await asyncio.gather(*(guarded(v, key, job()) for key, job in jobs.items()
                           if key in plan.measures))
    await guarded(v, "asked-again", asked_again())
    await guarded(v, "widened", widened())
    await guarded(v, "logs", read_logs(cluster, profile, v))
    return v


async def keyed(keys: Sequence[K], jobs: Sequence[Awaitable[V]]) -> dict[K, V]:
    """``jobs`` run together, their results by ``keys`` (in the same order)."""
    return dict(zip(keys, await asyncio.gather(*jobs), strict=True))


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


