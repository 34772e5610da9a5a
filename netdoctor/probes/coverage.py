"""Which node pairs a run measures: a linear, rotating sample by default, every pair on request.

Pinging every ordered pair costs n*(n-1) measurements: 9,900 on 100 nodes. By default each
node reaches ``k`` peers instead, chosen by a rotation over the nodes in name order: for seed
``s`` node ``i`` reaches nodes ``i + o`` for the ``k`` offsets ``o`` that follow
``(s * k) mod (n - 1)`` in ``1 .. n-1``. Every node is then the source of ``k`` paths and the
target of ``k``, and seeds ``0 .. ceil((n-1)/k) - 1`` together cover every ordered pair once.
When a sampled path fails, :func:`widen` adds every path into and out of its two nodes, so
the failure can still be pinned to a node or a pair.

Example:
    >>> [str(p) for p in sample(["a", "b", "c", "d"], peers=1, seed=0).pairs]
    ['a->b', 'b->c', 'c->d', 'd->a']
    >>> [str(p) for p in sample(["a", "b", "c", "d"], peers=1, seed=1).pairs]
    ['a->c', 'b->d', 'c->a', 'd->b']
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from netdoctor.probes.network import PairId, node_pairs

DEFAULT_PEERS = 3
"""Peers each node reaches by default: three disjoint witnesses per node and direction."""


@dataclass(frozen=True)
class Coverage:
    """The pairs one run measures and how they were chosen."""

    nodes: tuple[str, ...]
    pairs: tuple[PairId, ...]
    full_mesh: bool
    peers: int
    """Peers per node (``n - 1`` for the full mesh)."""
    seed: int
    widened: tuple[PairId, ...] = ()
    """Paths added around failing sampled paths (measured, not collected as checks)."""

    @property
    def total(self) -> int:
        """Ordered pairs of distinct nodes there are."""
        return len(self.nodes) * (len(self.nodes) - 1)

    @property
    def rotations(self) -> int:
        """Seeds needed to cover every pair: ``ceil((n-1)/k)``."""
        n = len(self.nodes)
        return 1 if self.full_mesh or n < 2 else math.ceil((n - 1) / self.peers)

    def statement(self) -> str:
        """One line for the terminal and the reports."""
        if self.full_mesh:
            return f"coverage: full mesh, {len(self.pairs)} of {self.total} node pairs"
        return (f"coverage: {len(self.pairs)} of {self.total} node pairs (each node to "
                f"{self.peers} peers, rotation {self.seed % self.rotations + 1} of "
                f"{self.rotations}, --coverage-seed {self.seed}; {self.rotations} successive "
                f"seeds cover every pair; --full-mesh for all){self._widened_text()}")

    def _widened_text(self) -> str:
        return f"; widened by {len(self.widened)} paths around failures" if self.widened else ""

    def with_widened(self, extra: Iterable[PairId]) -> Coverage:
        """The same coverage, recording ``extra`` as measured around failures."""
        known = set(self.pairs) | set(self.widened)
        added = tuple(p for p in extra if p not in known)
        return Coverage(self.nodes, self.pairs, self.full_mesh, self.peers, self.seed,
                        self.widened + added)

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``coverage`` block."""
        return {"mode": "full-mesh" if self.full_mesh else "sampled", "nodes": len(self.nodes),
                "pairs": len(self.pairs), "total_pairs": self.total, "peers": self.peers,
                "seed": self.seed, "rotations": self.rotations,
                "widened": [str(p) for p in self.widened], "statement": self.statement()}


def default_seed(now: float | None = None) -> int:
    """The seed of a run that names none: the minute it started, so successive runs move on."""
    return int((time.time() if now is None else now) // 60)


def offsets(n: int, peers: int, seed: int) -> tuple[int, ...]:
    """The ``peers`` offsets in ``1 .. n-1`` that seed ``seed`` uses, in order.

    Example:
        >>> offsets(10, 3, 0), offsets(10, 3, 1), offsets(10, 3, 2)
        ((1, 2, 3), (4, 5, 6), (7, 8, 9))
    """
    if n < 2:
        return ()
    k = min(peers, n - 1)
    rotations = math.ceil((n - 1) / k)
    # Seeds wrap by whole rotations so ``seed`` and ``seed + rotations`` pick the same block.
    start = (seed % rotations) * k
    return tuple(sorted({(start + j) % (n - 1) + 1 for j in range(k)}))


def sample(nodes: Sequence[str], peers: int = DEFAULT_PEERS, seed: int = 0,
           full_mesh: bool = False) -> Coverage:
    """The pairs to measure among ``nodes`` (order does not matter: they are sorted).

    With ``full_mesh`` or ``peers >= n - 1``: every ordered pair.
    """
    names = tuple(sorted(set(nodes)))
    n = len(names)
    if full_mesh or peers >= n - 1:
        return Coverage(names, tuple(node_pairs(names)), True, max(n - 1, 0), seed)
    pairs = tuple(PairId(names[i], names[(i + o) % n])
                  for i in range(n) for o in offsets(n, peers, seed))
    return Coverage(names, pairs, False, peers, seed)


def widen(coverage: Coverage, failed: Iterable[PairId]) -> list[PairId]:
    """Paths to measure around ``failed`` sampled paths: every node of a failing path to and
    from every other node, minus what was already measured; ``[]`` for a full mesh."""
    if coverage.full_mesh:
        return []
    suspects = sorted({n for p in failed for n in (p.source, p.target)})
    done = set(coverage.pairs) | set(coverage.widened)
    extra: list[PairId] = []
    for node in suspects:
        for other in coverage.nodes:
            for p in (PairId(node, other), PairId(other, node)):
                if other != node and p not in done:
                    done.add(p)
                    extra.append(p)
    return extra
