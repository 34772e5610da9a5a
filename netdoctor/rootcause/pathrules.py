"""Detectors for faults on the path between nodes: the failing paths, localised, joined with
the node facts that differ there (:mod:`netdoctor.rootcause.pathfacts`).

Rules go by fact, not by fault: a per-peer forwarding entry that is wrong, an MTU that does
not fit, a masquerade rule the other nodes have, a firewall rule that matches the failing
traffic, a DNS replica silent from nodes that reach its node.
"""

from __future__ import annotations

from collections.abc import Iterable

from netdoctor.rootcause.localise import Locus, node_loci, pair_loci, target_loci
from netdoctor.rootcause.model import Observations, ReplicaProbe
from netdoctor.rootcause.pathfacts import (
    POD_KINDS,
    THROUGH_PODS,
    VXLAN_PORTS,
    Finding,
    Traffic,
    firewall,
    forwarding,
    masquerade,
    mtu,
)
from netdoctor.rootcause.ranking import Candidate, detector

STRONG, WEAK = 0.95, 0.6
"""Confidence of a differing fact where the checks fail, and of one no failing path shows."""


def _pod_loci(obs: Observations) -> list[Locus]:
    return pair_loci(obs.checks, POD_KINDS)


def _touches(locus: Locus, node: str, peer: str | None) -> bool:
    if peer is None:
        return node in (locus.node, locus.peer) or any(node in p for p in locus.pairs)
    return {node, peer} == {locus.node, locus.peer} or any(
        set(p) == {node, peer} for p in locus.pairs)


def _loci_lines(loci: Iterable[Locus]) -> tuple[str, ...]:
    return tuple(f"observed: {x.describe()} ({len(x.tests)} check(s))" for x in loci)


def _candidate(f: Finding, summary: str, layer: int,
               family: list[Locus], breaks: tuple[tuple[str, str], ...]) -> Candidate:
    hit = [x for x in family if _touches(x, f.node, f.peer)]
    where = f"{f.node} and {f.peer}" if f.peer else f.node
    contrast = (*f.contrast, *f.evidence,
                *(_loci_lines(hit) or (f"observed: no failing path through {where}",)))
    return Candidate(f.id, f.node, summary, (f"{f.node}: {f.observed}", *f.evidence,
                                             f"see it: {f.command}"),
                     frozenset(), layer, peer=f.peer, breaks=breaks,
                     confidence=STRONG if hit else WEAK, contrast=contrast)


@detector
def forwarding_entries(obs: Observations) -> Iterable[Candidate]:
    """Overlay routes, VTEP neighbours and FDB entries that do not lead to their peer."""
    loci = _pod_loci(obs)
    pair = (*((k, "pair") for k in POD_KINDS), ("vxlan_peers", "target"),
            *((k, "either") for k in THROUGH_PODS))
    for f in forwarding(obs.facts, obs.nodes):
        what = {"pod-route-missing": "no route to the pod network of",
                "vxlan-neighbor-stale": "stale VXLAN neighbour entry for",
                "vxlan-fdb-stale": "stale VXLAN FDB entry for"}[f.id]
        if f.id == "pod-route-missing" and f.observed.startswith("route "):
            what = "the route through another node's VTEP to the pod network of"
        yield _candidate(f, f"{f.node}: {what} {f.peer}", 2, loci, pair)


@detector
def mtu_mismatch(obs: Observations) -> Iterable[Candidate]:
    """Full-size packets vanish on a node whose MTUs do not fit (small ones pass)."""
    loci = pair_loci(obs.checks, ("pod_mtu",), "full-size (don't-fragment)")
    for f in mtu(obs.facts, obs.nodes):
        yield _candidate(f, f"{f.node}: MTU mismatch ({f.observed})", 0, loci,
                         (("pod_mtu", "either"), ("pod_http", "either"),
                          ("vxlan_peers", "target")))


@detector
def masquerade_missing(obs: Observations) -> Iterable[Candidate]:
    """Pod egress fails from a node that lacks the pod network's masquerade rule."""
    loci = node_loci(obs.checks, ("egress_http",), "egress")
    for f in masquerade(obs.facts, obs.nodes):
        yield _candidate(f, f"{f.node}: pod traffic leaves unmasqueraded", 1, loci,
                         (("egress_http", "either"),))


def _ip(obs: Observations, node: str | None) -> tuple[str, ...]:
    view = obs.node(node) if node else None
    return (view.internal_ip,) if view and view.internal_ip else ()


def _cidr(obs: Observations, node: str | None) -> tuple[str, ...]:
    view = obs.node(node) if node else None
    return (view.pod_cidr,) if view and view.pod_cidr else ()


def _traffic(obs: Observations) -> Iterable[tuple[Locus, str | None, Traffic,
                                                  tuple[tuple[str, str], ...]]]:
    """(locus, node whose rules to read, the traffic it dropped, what it breaks)."""
    explained = {(f.node, f.peer) for f in forwarding(obs.facts, obs.nodes)}
    for x in _pod_loci(obs):
        if (x.node, x.peer) in explained or (x.peer, x.node) in explained:
            continue
        ends = tuple(n for n in (x.node, x.peer) if n)
        # A node's failing paths run to and from the nodes of its failing pairs.
        talk = sorted({n for p in x.pairs for n in p} | set(ends))
        ips = tuple(ip for n in talk for ip in _ip(obs, n))
        cidrs = tuple(c for n in talk for c in _cidr(obs, n))
        breaks = (*((k, "pair") for k in POD_KINDS), *((k, "either") for k in THROUGH_PODS))
        between = f"between {' and '.join(ends)}" if len(ends) > 1 else f"of {x.node}"
        for n in ends:
            yield x, n, Traffic(f"VXLAN (udp {'/'.join(map(str, VXLAN_PORTS))}) {between}",
                                "udp", VXLAN_PORTS, ips, ips), breaks
            yield x, n, Traffic(f"pod traffic {between}", None, (), cidrs, cidrs), breaks
    if obs.node_port:
        for x in target_loci(obs.checks, ("node_port",), "NodePort"):
            yield x, x.node, Traffic(f"NodePort tcp/{obs.node_port} {x.direction} {x.node}",
                                     "tcp", (obs.node_port,),
                                     dst=_ip(obs, x.node) if x.direction == "to" else ()), \
                (("node_port", "target" if x.direction == "to" else "either"),)
    ports = tuple(sorted({53, obs.dns_port}))
    for x in node_loci(obs.checks, ("dns", "cluster_dns_answers"), "DNS"):
        # A replica on the node sends its upstream lookups from there too.
        upstream = (("dns[external]", "any"),) if any(
            r.node == x.node for r in obs.replicas) else ()
        yield x, x.node, Traffic(f"DNS (udp/{'/'.join(map(str, ports))}) from pods on "
                                 f"{x.node}", "udp", ports, _cidr(obs, x.node)), \
            (("dns", "either"), ("cluster_dns_answers", "either"), *upstream)
    for r in obs.replicas:
        if r.silent and r.node:
            x = Locus("DNS replica", r.node, None, "at", (), ())
            yield x, r.node, _replica_traffic(obs, r), (("dns", "any"),)
    if any(c.place is not None and c.place.kind == "dns[external]" for c in obs.checks):
        for r in obs.replicas:  # a replica's own lookups upstream leave from its node
            if r.node:
                yield Locus("DNS upstream", r.node, None, "from", (), ()), r.node, Traffic(
                    f"upstream DNS (udp/53) from {r.ref} ({r.ip})", "udp", (53,), (r.ip,)), \
                    (("dns[external]", "any"),)
    for x in node_loci(obs.checks, ("egress_http",), "egress"):
        yield x, x.node, Traffic(f"egress from pods on {x.node}", "tcp", (80, 443),
                                 _cidr(obs, x.node)), (("egress_http", "either"),)


@detector
def host_firewall(obs: Observations) -> Iterable[Candidate]:
    """A DROP/REJECT rule on a node at a failing locus, in any backend and table, that
    matches the traffic the failing checks sent there."""
    seen: set[tuple[str, str]] = set()
    for locus, node, traffic, breaks in _traffic(obs):
        facts = obs.facts.get(node or "")
        if facts is None:
            continue
        for f in firewall(facts, traffic):
            rule = f.subject
            if (f.node, rule) in seen:
                continue
            seen.add((f.node, rule))
            peer = next((n for n in (locus.node, locus.peer) if n and n != f.node), None)
            yield Candidate("host-firewall", f.node, f"{f.node}: host firewall rule drops "
                            f"{traffic.what}", (f"{f.node}: {f.observed}", *f.evidence,
                                                f"see it: {f.command}"),
                            frozenset(), 1, rule, peer=peer if locus.peer else None,
                            breaks=breaks, confidence=STRONG,
                            contrast=(*f.contrast, *_loci_lines([locus])),
                            tests=locus.tests)


def _replica_traffic(obs: Observations, r: ReplicaProbe) -> Traffic:
    """The lookups a replica did not answer: from the pods of the nodes it was silent to."""
    return Traffic(f"DNS (udp/{obs.dns_port}) to {r.ref} ({r.ip})", "udp", (obs.dns_port,),
                   tuple(c for n in sorted(r.silent) for c in _cidr(obs, n)), (r.ip,))


def _reachable(obs: Observations, r: ReplicaProbe) -> set[str]:
    """Nodes whose pod paths to the replica's node pass (a silent replica from them is the
    replica, not the path)."""
    return {a for a, b in obs.pod_paths_ok if b == r.node} | ({r.node} if r.node else set())


@detector
def dns_replica(obs: Observations) -> Iterable[Candidate]:
    """A DNS replica that does not answer nodes that reach its node while another replica
    answers them."""
    answering = [r for r in obs.replicas if r.answered]
    for r in obs.replicas:
        others = set().union(*(x.answered for x in obs.replicas if x is not r))
        # Silent from nodes another replica answers and whose pod paths reach its node:
        # the replica, not the nodes or the path (those silence every replica).
        silent = sorted(r.silent & _reachable(obs, r) & others)
        if not silent:
            continue
        facts = obs.facts.get(r.node or "")
        fw = firewall(facts, _replica_traffic(obs, r)) if facts else []
        if fw:
            continue  # the host-firewall detector names the rule, from the DNS loci
        yield Candidate(
            "dns-replica-unresponsive", r.node, f"DNS replica {r.ref} on {r.node} does not "
            "answer", (f"lookups at {r.ip}:{obs.dns_port} from {', '.join(silent)} failed",
                       f"answered: {', '.join(x.ref for x in answering)}"),
            frozenset(), 4, r.ref, breaks=(("dns", "any"), ("cluster_dns_answers", "any")),
            confidence=0.9 if not r.answered else 0.7,
            contrast=(f"expected {r.ref} ({r.ip}) to answer like "
                      f"{answering[0].ref} / observed no answer from "
                      f"{', '.join(silent)}, whose pod paths to {r.node} pass",))
