"""Measurements through probe pods: the pod-to-pod ping matrix and DNS lookups.

Everything is measured concurrently, once per run, a probe's commands batched into few execs
(bounded by a semaphore on execs); the checks only read the results.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netdoctor.cluster.exec import Batcher, ExecTarget, Measured, measure
from netdoctor.probes.commands import dns_argv, parse_dns_attempt, parse_ping_attempt, ping_argv
from netdoctor.probes.parsers import LookupResult, PingResult

CONCURRENCY = 32


@dataclass(frozen=True)
class PairId:
    """An ordered pair of nodes; its text is the readable test id ``a->b``."""

    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class Scope:
    """The nodes and node pairs the selected checks read, when a selection (``-k worker-5``,
    a remediation's verification of its failing checks) names only some of them."""

    nodes: frozenset[str] = frozenset()
    """Nodes read by checks parametrized by one node (lookups, Services, egress from it)."""
    pairs: frozenset[PairId] = frozenset()
    """Node pairs read by checks parametrized by a path (pings, pod paths, NodePort, MTU)."""

    def left_out(self, nodes: Sequence[str], pairs: Sequence[PairId], *, what_nodes: str,
                 what_pairs: str) -> list[str]:
        """What the scope leaves out of ``nodes`` and ``pairs``, in words ([] for nothing).

        Example:
            >>> Scope(frozenset({"a"})).left_out(["a", "b"], [PairId("a", "b")],
            ...                                  what_nodes="lookups", what_pairs="pings")
            ['lookups from 1 of 2 nodes', 'pings for 0 of 1 node pairs']
        """
        words = []
        kept = [n for n in nodes if n in self.nodes]
        if what_nodes and len(kept) < len(nodes):
            words.append(f"{what_nodes} from {len(kept)} of {len(nodes)} nodes")
        paths = [p for p in pairs if p in self.pairs]
        if what_pairs and len(paths) < len(pairs):
            words.append(f"{what_pairs} for {len(paths)} of {len(pairs)} node pairs")
        return words


def node_pairs(nodes: Sequence[str]) -> list[PairId]:
    """Every ordered pair of distinct nodes, in a stable order.

    Example:
        >>> [str(p) for p in node_pairs(["a", "b"])]
        ['a->b', 'b->a']
    """
    return [PairId(a, b) for a in nodes for b in nodes if a != b]


def ip_in_cidr(ip: str, cidr: str) -> bool:
    """Whether ``ip`` lies in ``cidr`` (False when either is missing or malformed)."""
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


@dataclass(frozen=True)
class DnsQuery:
    """One lookup from one probe: what was asked and what came back."""

    node: str
    name: str
    server: str
    measured: Measured[LookupResult]


def batcher() -> Batcher:
    """Batches the pass's commands per probe pod; the limit counts execs, not commands."""
    return Batcher(asyncio.Semaphore(max(CONCURRENCY // 4, 1)))


async def ping_matrix(
    probes: Mapping[str, ExecTarget], pairs: Sequence[PairId], image: str, timeout: float,
    batch: Batcher | None = None,
) -> dict[PairId, Measured[PingResult]]:
    """Ping every pair whose both probes are running; all pairs at once, a source's pings
    in as few execs as :class:`Batcher` makes of them (each still its own command)."""
    run = (batch or batcher()).exec
    runnable = [p for p in pairs if p.source in probes and p.target in probes]
    results = await asyncio.gather(*(
        measure(probes[p.source], ping_argv(image, probes[p.target].ip, timeout),
                parse_ping_attempt, deadline=timeout + 5, run=run)
        for p in runnable))
    return dict(zip(runnable, results, strict=True))


Lookup = tuple[str, str]
"""One lookup job: (node of the probe, name asked)."""


async def lookups(
    probes: Mapping[str, ExecTarget], jobs: Sequence[Lookup], server: str, image: str,
    timeout: float, batch: Batcher | None = None,
) -> dict[Lookup, Measured[LookupResult]]:
    """Each (node, name) looked up at ``server`` from that node's probe; all at once
    (batched per probe); jobs whose probe is not running are left out."""
    run = (batch or batcher()).exec
    runnable = [j for j in jobs if j[0] in probes]
    results = await asyncio.gather(*(
        measure(probes[node], dns_argv(image, name, server, timeout), parse_dns_attempt,
                deadline=timeout + 5, run=run)
        for node, name in runnable))
    return dict(zip(runnable, results, strict=True))
