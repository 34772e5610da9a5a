"""The failing and flaky paths of a run reduced to the smallest explanation.

Checks name where they looked (:class:`netdoctor.model.Place`): a node pair for paths
(``pod_ping``, ``node_port``), a node for per-node paths (``egress_http``). The paths that
failed (or were flaky) are reduced to loci: one node when it takes part in failing paths to
at least two peers, one pair (and its direction) otherwise; NodePorts to the node they
target; per-node paths to their node.

Example:
    >>> from netdoctor.model import CheckResult, Place
    >>> bad = [CheckResult(f"t::test_pod_ping[{a}->{b}]", "failed",
    ...                    place=Place("pod_ping", "", a, b)) for a, b in (("a", "b"), ("b", "a"))]
    >>> [(x.node, x.peer, x.direction) for x in pair_loci(bad, ("pod_ping",))]
    [('a', 'b', 'both ways')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netdoctor.model import CheckResult

BAD = ("failed", "flaky")


@dataclass(frozen=True)
class Locus:
    """Where a group of failing checks meets.

    Attributes:
        family: The kinds it was reduced from (``pod``, ``node_port``, ``egress_http``...).
        node: The node (for a pair: the first end; for NodePorts: the target).
        peer: The other end of a pair, else ``None``.
        direction: ``both ways``, ``a->b only``, ``from``, ``to`` or ``at``.
        tests: Node ids of the checks it groups.
        pairs: The failing (from, to) paths behind it.
    """

    family: str
    node: str
    peer: str | None
    direction: str
    tests: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """One line: where, which way."""
        if self.peer:
            return f"{self.family} paths between {self.node} and {self.peer} fail {self.direction}"
        way = {"at": "to and from", "from": "from", "to": "to"}.get(self.direction,
                                                                   self.direction)
        return f"{self.family} paths {way} {self.node} fail"


def base_kind(kind: str) -> str:
    """A place kind without its extra parameters (``dns[replica]`` -> ``dns``)."""
    return kind.split("[", 1)[0]


def bad_checks(checks: Iterable[CheckResult], kinds: Sequence[str]) -> list[CheckResult]:
    """Failed or flaky checks of ``kinds`` that name a node."""
    return [c for c in checks if c.outcome in BAD and c.place is not None
            and base_kind(c.place.kind) in kinds]


def pair_loci(checks: Iterable[CheckResult], kinds: Sequence[str], family: str = "pod"
              ) -> list[Locus]:
    """Failing node-pair checks of ``kinds`` as loci: a node touching failing paths to two or
    more other nodes (or from itself to itself) is one locus; what is left, one per pair."""
    bad = [c for c in bad_checks(checks, kinds) if c.place is not None and c.place.target]
    by_pair: dict[tuple[str, str], list[str]] = {}
    for c in bad:
        assert c.place is not None
        by_pair.setdefault((c.place.source, c.place.target), []).append(c.nodeid)
    left = set(by_pair)
    loci: list[Locus] = []
    while left:
        touch: dict[str, set[str]] = {}
        for a, b in left:
            touch.setdefault(a, set()).add(b)
            touch.setdefault(b, set()).add(a)
        node = max(sorted(touch), key=lambda n: len(touch[n]))
        others = touch[node] - {node}
        if len(others) >= 2 or node in touch[node]:
            mine = sorted(p for p in left if node in p)
            outgoing = any(a == node for a, _ in mine)
            incoming = any(b == node for _, b in mine)
            way = "at" if outgoing and incoming else "from" if outgoing else "to"
            loci.append(Locus(family, node, None, way,
                              tuple(t for p in mine for t in by_pair[p]), tuple(mine)))
            left -= set(mine)
            continue
        peer = next(iter(others))
        a, b = sorted((node, peer))
        mine = sorted(p for p in left if set(p) == {a, b})
        way = "both ways" if len(mine) == 2 else f"{mine[0][0]}->{mine[0][1]} only"
        loci.append(Locus(family, a, b, way, tuple(t for p in mine for t in by_pair[p]),
                          tuple(mine)))
        left -= set(mine)
    return sorted(loci, key=lambda x: (-len(x.tests), x.node))


def target_loci(checks: Iterable[CheckResult], kinds: Sequence[str], family: str
                ) -> list[Locus]:
    """Failing node-pair checks grouped by the node they target (NodePorts: the node whose
    port does not answer), or by their source when every target fails from it."""
    bad = [c for c in bad_checks(checks, kinds) if c.place is not None and c.place.target]
    by_target: dict[str, list[CheckResult]] = {}
    for c in bad:
        assert c.place is not None
        by_target.setdefault(c.place.target, []).append(c)
    by_source: dict[str, list[CheckResult]] = {}
    for c in bad:
        assert c.place is not None
        by_source.setdefault(c.place.source, []).append(c)
    if len(by_source) == 1 and len(by_target) > 1:
        (src, found), = by_source.items()
        return [Locus(family, src, None, "from", tuple(c.nodeid for c in found),
                      tuple((c.place.source, c.place.target) for c in found if c.place))]
    return [Locus(family, t, None, "to", tuple(c.nodeid for c in found),
                  tuple((c.place.source, c.place.target) for c in found if c.place))
            for t, found in sorted(by_target.items())]


def node_loci(checks: Iterable[CheckResult], kinds: Sequence[str], family: str
              ) -> list[Locus]:
    """Failing per-node checks of ``kinds``, one locus per node."""
    by_node: dict[str, list[str]] = {}
    for c in bad_checks(checks, kinds):
        assert c.place is not None
        if not c.place.target:
            by_node.setdefault(c.place.source, []).append(c.nodeid)
    return [Locus(family, n, None, "from", tuple(ids)) for n, ids in sorted(by_node.items())]
