"""One concurrent pass over the cluster: component state, Services and, through probe pods,
the ping matrix and DNS lookups. Run once per session; checks only read :class:`Observations`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from netdoctor.cluster.client import AccessProblem, Cluster
from netdoctor.cluster.exec import Measured, measure
from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import ClusterProfile
from netdoctor.probes.again import OnceAgain, ask_again
from netdoctor.probes.components import ComponentState, ServiceEndpoints, read_all_components
from netdoctor.probes.components import read_services as _read_services
from netdoctor.probes.coverage import Coverage, widen
from netdoctor.probes.network import (
    DnsQuery,
    Lookup,
    PairId,
    Scope,
    batcher,
    lookups,
    node_pairs,
    ping_matrix,
)
from netdoctor.probes.parsers import LookupResult, PingResult, ResolvConf, parse_resolv_conf

API_SERVICE = "kubernetes.default.svc"
"""The API Service's name every cluster serves, completed by the cluster domain."""

log = logging.getLogger("netdoctor.run")


def cluster_name(domain: str) -> str:
    """The API Service's full name in ``domain`` (read from a probe pod's resolv.conf)."""
    return f"{API_SERVICE}.{domain}"


@dataclass(frozen=True)
class Plan:
    """What to measure and with which settings."""

    probe_image: str
    probe_timeout: float
    external_name: str
    """Name outside the cluster to resolve through the cluster DNS ("" to skip)."""
    probe_namespace: str
    ignore_services: Sequence[str] = ()
    want_probes: bool = True
    recent: float | None = None
    """Seconds of component Events and log lines that count (None: all of them)."""
    coverage: Coverage | None = None
    """The node pairs to ping (None: every ordered pair)."""
    scope: Scope | None = None
    """Only these pairs pinged and these nodes' lookups made (None: all of them)."""

    def planned_pairs(self, nodes: Sequence[str]) -> list[PairId]:
        """The coverage's pairs of ``nodes`` (every ordered pair without one), before the
        scope narrows them."""
        return list(self.coverage.pairs) if self.coverage is not None else node_pairs(nodes)


@dataclass
class Observations:
    """Everything measured in one pass; ``errors`` says what could not be measured and why."""

    profile: ClusterProfile
    probes: ProbeSet | None = None
    pings: dict[PairId, Measured[PingResult]] = field(default_factory=dict)
    dns: list[DnsQuery] = field(default_factory=list)
    components: dict[str, ComponentState] = field(default_factory=dict)
    services: list[ServiceEndpoints] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    resolv: ResolvConf | None = None
    """A probe pod's resolv.conf: the cluster DNS address and domain as pods see them."""
    widened: tuple[PairId, ...] = ()
    """Pairs pinged beyond the sampled ones, around sampled pairs that failed."""

    @property
    def dns_server(self) -> str:
        """The cluster DNS address: the DNS Service's ClusterIP, else the pods' nameserver."""
        return self.profile.dns_service_ip or (self.resolv.nameserver if self.resolv else "")


async def _guard(obs: Observations, key: str, aw: Awaitable[None]) -> None:
    try:
        await aw
    except Exception as exc:
        obs.errors[key] = f"{type(exc).__name__}: {exc}"


async def observe(
    cluster: Cluster, profile: ClusterProfile, plan: Plan,
    start_probes: Callable[[], Awaitable[ProbeSet]],
) -> Observations:
    """Measure everything concurrently; probe setup overlaps the component reads."""
    obs = Observations(profile)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def components() -> None:
        obs.components = await read_all_components(cluster, profile, plan.recent)

    async def services() -> None:
        obs.services = await _read_services(cluster, plan.ignore_services,
                                            [plan.probe_namespace])

    async def network() -> None:
        started = time.monotonic()
        probes = await start_probes()
        obs.probes = probes
        log.info("%d of %d probe pods ready after %.1fs", len(probes.ready),
                 len(profile.ready_nodes), time.monotonic() - started)
        pairs = [p for p in plan.planned_pairs([n.name for n in profile.ready_nodes])
                 if plan.scope is None or p in plan.scope.pairs]
        looking = [n for n in probes.ready if plan.scope is None or n in plan.scope.nodes]
        batch = batcher()  # a probe's pings and lookups share its execs

        async def names() -> list[str]:
            """The names to look up, from the probes' resolv.conf (read first, on its own,
            so that every probe's pings and lookups then share one exec)."""
            if probes.ready:
                first = probes.ready[sorted(probes.ready)[0]]
                read = await measure(first, ("cat", "/etc/resolv.conf"),
                                     lambda a: parse_resolv_conf(a.stdout),
                                     deadline=plan.probe_timeout + 5)
                obs.resolv = read.result if read.result.conclusive else None
            domain = obs.resolv.cluster_domain if obs.resolv else ""
            if not domain:
                obs.errors["cluster-domain"] = "no svc.<domain> in the probe pods' resolv.conf"
            wanted = [n for n in (cluster_name(domain) if domain else "", plan.external_name)
                      if n]
            return wanted if obs.dns_server else []

        def pings_of(want: Sequence[PairId]) -> Awaitable[dict[PairId, Measured[PingResult]]]:
            return ping_matrix(probes.ready, want, plan.probe_image, plan.probe_timeout, batch)

        def lookups_of(
            want: Sequence[Lookup],
        ) -> Awaitable[dict[Lookup, Measured[LookupResult]]]:
            return lookups(probes.ready, want, obs.dns_server, plan.probe_image,
                           plan.probe_timeout, batch)

        wanted = await names()
        obs.pings, looked = await asyncio.gather(
            pings_of(pairs), lookups_of([(node, n) for node in looking for n in wanted]))
        # What the burst lost is asked again alone: a slow moment answers, a fault does not.
        log.info("%d pings and %d lookups measured after %.1fs", len(obs.pings), len(looked),
                 time.monotonic() - started)
        asked = await ask_again([OnceAgain(obs.pings, pings_of),
                                 OnceAgain(looked, lookups_of)])
        obs.dns = [DnsQuery(node, name, obs.dns_server, m) for (node, name), m in looked.items()]
        if asked:
            log.info("asked again alone: %d measurements that failed in the burst", asked)
        if plan.coverage is not None:
            # A sampled path failed: measure its nodes against every peer, so the failure
            # can still be pinned to a node or a pair.
            extra = widen(plan.coverage, [p for p, m in obs.pings.items()
                                          if m.result.conclusive and not m.result.ok])
            more = await pings_of(extra)
            obs.pings.update(more)
            await ask_again([OnceAgain(obs.pings, pings_of, only=set(more))])
            obs.widened = tuple(more)

    async def probe_network() -> None:
        try:
            await network()
        except AccessProblem:
            raise  # RBAC refused the probes: the run cannot go on, the caller says why
        except Exception as exc:  # the API failed mid-way: what was not measured is unknown
            obs.errors["probes"] = f"{type(exc).__name__}: {exc}"

    jobs = [_guard(obs, "components", components()), _guard(obs, "services", services())]
    if plan.want_probes:
        jobs.append(probe_network())
    await asyncio.gather(*jobs)
    obs.seconds = loop.time() - started
    return obs

