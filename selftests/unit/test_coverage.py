"""Pod-path coverage: the rotation covers every pair over ceil((n-1)/k) seeds, is
deterministic, and widening surrounds failing paths."""

from __future__ import annotations

import math

import pytest

from netdoctor.probes.coverage import default_seed, offsets, sample, widen
from netdoctor.probes.network import PairId, node_pairs


def names(n: int) -> list[str]:
    return [f"worker-{i}" for i in range(n)]


@pytest.mark.parametrize(("n", "k"), [(2, 1), (3, 1), (5, 2), (12, 3), (50, 3), (100, 3),
                                      (100, 7), (17, 16)])
def test_successive_seeds_cover_every_pair(n: int, k: int) -> None:
    rotations = math.ceil((n - 1) / k)
    seen: set[PairId] = set()
    for seed in range(rotations):
        seen |= set(sample(names(n), k, seed).pairs)
    assert seen == set(node_pairs(names(n)))
    # one seed fewer leaves some pair out (for samples smaller than the mesh)
    if rotations > 1:
        fewer = set().union(*(set(sample(names(n), k, s).pairs) for s in range(rotations - 1)))
        assert fewer != set(node_pairs(names(n)))


@pytest.mark.parametrize(("n", "k"), [(12, 3), (100, 3)])
def test_each_node_reaches_and_is_reached_by_k_peers(n: int, k: int) -> None:
    cov = sample(names(n), k, 5)
    assert len(cov.pairs) == n * k
    assert len(set(cov.pairs)) == n * k
    for node in names(n):
        assert sum(p.source == node for p in cov.pairs) == k
        assert sum(p.target == node for p in cov.pairs) == k
    assert all(p.source != p.target for p in cov.pairs)


def test_deterministic_and_order_free() -> None:
    shuffled = list(reversed(names(30)))
    assert sample(names(30), 3, 7) == sample(shuffled, 3, 7)
    assert sample(names(30), 3, 7).pairs != sample(names(30), 3, 8).pairs
    assert sample(names(30), 3, 7).pairs == sample(names(30), 3, 7 + 10).pairs  # 10 rotations


def test_offsets_wrap_at_the_last_rotation() -> None:
    assert offsets(10, 4, 2) == (1, 2, 3, 9)  # 9 then back to 1: the last block is k wide too
    assert offsets(1, 3, 0) == ()


def test_full_mesh_and_small_clusters() -> None:
    assert sample(names(12), 3, 0, full_mesh=True).pairs == tuple(
        node_pairs(sorted(names(12))))
    small = sample(names(3), 3, 0)
    assert small.full_mesh
    assert set(small.pairs) == set(node_pairs(names(3)))
    assert sample(names(1), 3, 0).pairs == ()


def test_widen_surrounds_the_failing_nodes() -> None:
    cov = sample(names(12), 3, 0)
    bad = PairId("worker-2", "worker-5")
    extra = widen(cov, [bad])
    want = {p for p in node_pairs(names(12))
            if {p.source, p.target} & {"worker-2", "worker-5"}} - set(cov.pairs)
    assert set(extra) == want
    assert len(extra) == len(set(extra))
    assert widen(cov, []) == []
    assert widen(sample(names(12), 3, 0, full_mesh=True), [bad]) == []
    assert not set(widen(cov.with_widened(extra), [bad]))  # already measured


def test_statement_and_json() -> None:
    cov = sample(names(100), 3, 0).with_widened([PairId("worker-1", "worker-50")])
    block = cov.to_json()
    assert block["pairs"] == 300
    assert block["total_pairs"] == 9900
    assert block["rotations"] == 33
    assert block["widened"] == ["worker-1->worker-50"]
    assert block["statement"].startswith("coverage: 300 of 9900 node pairs (each node to 3 peers")
    assert "widened by 1 paths" in block["statement"]
    assert "full mesh, 9900 of 9900" in sample(names(100), 3, 0, full_mesh=True).statement()


def test_default_seed_moves_each_minute() -> None:
    assert default_seed(120.0) == 2
    assert default_seed(179.0) == 2
    assert default_seed(180.0) == 3
