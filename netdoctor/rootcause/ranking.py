"""Candidates, the detector registry and the ranking with its invariant.

A detector reads :class:`Observations` and yields :class:`Candidate` causes: where they are,
the signals they would explain and the kinds of checks they break. :func:`explain` keeps the
candidates that explain something present, names the failed and flaky checks each explains,
orders them (most present signals explained first; on a tie, causes with a differing fact
before localised ones without, then lower layers first) and lists every failed or flaky
check no cause explains as ``unexplained``.

Detectors are registered with :func:`detector` (built-in) or returned by the
``pytest_netdoctor_detectors`` hook (plugins); :func:`explain` takes the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from netdoctor.model import CheckResult
from netdoctor.rootcause.localise import BAD, Locus, base_kind, node_loci, pair_loci, target_loci
from netdoctor.rootcause.model import Observations, Ranking, RootCause
from netdoctor.rootcause.pathfacts import POD_KINDS, THROUGH_PODS

CONNECTIVITY = "pod_connectivity_failed"
DNS = "dns_timeouts"
UNEXPLAINED_ID = "path-unexplained"
Role = str
"""How a check's place relates to a cause's nodes: ``pair`` (both ends are the cause's two
nodes; one end for a node cause), ``either`` (one end or the node of a per-node check is
one of them), ``target`` (the path ends there), ``any`` (wherever it looked)."""


@dataclass(frozen=True)
class Candidate:
    """A cause before ranking: what it would explain if those signals and checks fail."""

    id: str
    node: str | None
    summary: str
    evidence: tuple[str, ...]
    signals: frozenset[str]
    layer: int
    subject: str = ""
    peer: str | None = None
    breaks: tuple[tuple[str, Role], ...] = ()
    """(check kind, role): the failing checks of that kind it explains."""
    confidence: float = 0.5
    contrast: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    """Checks it explains by name (a localised cause names its own)."""


Detector = Callable[[Observations], Iterable[Candidate]]
DETECTORS: list[Detector] = []
"""The built-in detectors, in registration order."""


def detector(fn: Detector) -> Detector:
    """Register a built-in cause detector."""
    DETECTORS.append(fn)
    return fn


def names_node(test_ids: Iterable[str], node: str) -> bool:
    """A test's parametrize id names ``node`` (``[node]``, ``[node-...]``, ``[a->node]``)."""
    return any(f"[{node}]" in t or f"[{node}-" in t or f"{node}->" in t or f"->{node}]" in t
               for t in test_ids)


def claims(c: Candidate, check: CheckResult) -> bool:
    """``c`` explains ``check`` by the kinds it breaks and where the check looked."""
    place = check.place
    if place is None:
        return False
    ends = {n for n in (c.node, c.peer) if n}
    kind = base_kind(place.kind)
    for k, role in c.breaks:
        if k not in (kind, place.kind):
            continue
        if role == "any":
            return True
        if role == "target" and (place.target or place.source) in ends:
            return True
        if role == "either" and (place.source in ends or place.target in ends):
            return True
        if role == "pair" and (({place.source, place.target} == ends and c.peer)
                               or (not c.peer and c.node in (place.source, place.target))):
            return True
    return False


def _signal_tests(obs: Observations, signal: str, node: str | None) -> list[str]:
    tests = list(obs.failed_tests.get(signal, ()))
    if node is not None and signal in (CONNECTIVITY, DNS):
        tests = [t for t in tests if names_node([t], node)] or tests
    return tests


def _signal_claims(obs: Observations, c: Candidate, signal: str) -> list[str]:
    """The failing checks behind a signal the candidate says it explains: all of them for a
    candidate that declares no check kinds; else those it breaks, and those that name no
    node (a component's health)."""
    tests = _signal_tests(obs, signal, c.node)
    if not c.breaks:
        return tests
    by_id = {r.nodeid: r for r in obs.checks}
    return [t for t in tests if (r := by_id.get(t)) is None or r.place is None or claims(c, r)]


def _cause(obs: Observations, c: Candidate) -> RootCause | None:
    bad = [r for r in obs.checks if r.outcome in BAD]
    claimed = [r for r in bad if claims(c, r) or r.nodeid in c.tests]
    # A signal counts when the candidate explains a check behind it, or when no check is
    # known behind it (nothing to tell it from).
    behind = {s: found for s in sorted(set(c.signals) & obs.signals)
              if (found := _signal_claims(obs, c, s)) or not obs.failed_tests.get(s)}
    signals = set(behind) | {s for r in claimed for s in r.signals if r.outcome == "failed"}
    explained = sorted(signals)
    if not explained and not claimed:
        return None
    tests = list(dict.fromkeys([*(r.nodeid for r in claimed),
                                *(t for found in behind.values() for t in found)]))
    return RootCause(c.id, c.node, c.summary, c.evidence,
                     (*explained, *dict.fromkeys(tests)), c.layer, c.subject, c.peer,
                     c.confidence, c.contrast, tuple(tests))


def _key(c: RootCause) -> tuple[int, bool, int, float, str]:
    # Most present signals explained first; on a tie, a differing fact before a locus
    # without one, then the lower layer, then the surer cause.
    return (-sum(1 for e in c.explains if "::" not in e), c.id == UNEXPLAINED_ID, c.layer,
            -c.confidence, c.node or "")


PAIR_PATHS = ("pod_ping", "pod_http", "pod_to_pod", "pod_mtu")
NODE_PATHS = ("service_cluster_ip", "api_cluster_ip", "dns", "cluster_dns_answers",
              "egress_http")


def _unexplained_cause(obs: Observations, x: Locus) -> Candidate:
    """A localised failure no fact explains: where, which way, and what to check there."""
    ends = [n for n in (x.node, x.peer) if n]
    ips = {n: (v.internal_ip if (v := obs.node(n)) else "?") for n in ends}
    if x.peer:
        check = (f"check the underlay between {ips[x.node]} ({x.node}) and {ips[x.peer]} "
                 f"({x.peer}): firewalls, routes, MTU and VXLAN (udp 8472/4789) between them")
        same = f"the node facts of {x.node} and {x.peer} show no difference that explains it"
    else:
        check = (f"check {x.node} ({ips[x.node]}): its firewall, routes and the paths "
                 f"{x.direction} it")
        same = f"the node facts of {x.node} show no difference that explains it"
    # Paths through the pod network at its ends fail with it (Services balanced there,
    # DNS replicas behind it), as for a fact on the same locus.
    breaks = (((k, "pair") for k in POD_KINDS) if x.family == "pod" else
              (("node_port", "target"),) if x.family == "NodePort" else ())
    return Candidate(UNEXPLAINED_ID, x.node, x.describe(), (same, check), frozenset(), 6,
                     peer=x.peer, breaks=(*breaks, *((k, "either") for k in THROUGH_PODS)),
                     confidence=0.3 if x.peer else 0.25, tests=x.tests,
                     contrast=(f"expected these paths to pass like the others / observed: "
                               f"{x.describe()} ({len(x.tests)} check(s)); {same}",))


def _localised_rest(obs: Observations, rest: Sequence[str]) -> list[Candidate]:
    left = [r for r in obs.checks if r.nodeid in set(rest)]
    loci = [*pair_loci(left, PAIR_PATHS, "pod"), *target_loci(left, ("node_port",), "NodePort"),
            *node_loci(left, NODE_PATHS, "Service, DNS and egress")]
    return [_unexplained_cause(obs, x) for x in loci]


def rank(obs: Observations, detectors: Sequence[Detector] | None = None) -> list[RootCause]:
    """The ranked causes of :func:`explain`, best first."""
    return list(explain(obs, detectors).causes)


def explain(obs: Observations, detectors: Sequence[Detector] | None = None) -> Ranking:
    """Ranked causes and the failed or flaky checks none explains.

    Every check in ``obs.checks`` that failed or was flaky ends up in some cause's
    ``tests`` or in ``unexplained`` (so does every failing check behind a present signal).
    """
    causes = [found for detect in (DETECTORS if detectors is None else detectors)
              for c in detect(obs) if (found := _cause(obs, c)) is not None]
    bad = [r.nodeid for r in obs.checks if r.outcome in BAD]
    bad += [t for tests in obs.failed_tests.values() for t in tests]
    covered = {t for c in causes for t in c.tests}
    rest = [t for t in dict.fromkeys(bad) if t not in covered]
    causes += [found for c in _localised_rest(obs, rest)
               if (found := _cause(obs, c)) is not None]
    causes.sort(key=_key)
    covered = {t for c in causes for t in c.tests}
    return Ranking(tuple(causes), tuple(t for t in dict.fromkeys(bad) if t not in covered))
