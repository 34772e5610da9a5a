"""summary.json's matrix and per-node blocks, and their terminal rendering."""

from __future__ import annotations

from netdoctor.model import CheckResult, Place
from netdoctor.plugin.matrix import (
    NOT_MEASURED,
    cell_at,
    counts,
    matrix_block,
    node_block,
    node_totals,
)
from netdoctor.plugin.terminal import MATRIX_NODES, matrix_lines


def _pair(kind: str, src: str, dst: str, outcome: str, message: str = "") -> CheckResult:
    return CheckResult(f"t.py::test_{kind}[{src}->{dst}]", outcome, message=message,  # type: ignore[arg-type]
                       place=Place(kind, f"{kind} works.", src, dst))


def _node(kind: str, node: str, outcome: str) -> CheckResult:
    return CheckResult(f"t.py::test_{kind}[{node}]", outcome,  # type: ignore[arg-type]
                       place=Place(kind, "", node))


def test_matrix_keyed_by_kind_source_target() -> None:
    results = [_pair("pod_ping", "a", "b", "failed", "ping a->b: 0/3 passed\nmore"),
               _pair("pod_ping", "b", "a", "passed"),
               _pair("node_port", "a", "a", "flaky"),
               _node("egress_http", "a", "passed"),
               CheckResult("t.py::test_flannel", "failed")]
    block = matrix_block(results, ["a", "b", "c"])
    assert block["nodes"] == ["a", "b", "c"]
    assert list(block["kinds"]) == ["pod_ping", "node_port"]
    ping = block["kinds"]["pod_ping"]
    assert ping["title"] == "pod_ping works."
    assert ping["cells"]["a"]["b"] == {"outcome": "failed", "nodeid": "t.py::test_pod_ping[a->b]",
                                       "detail": "ping a->b: 0/3 passed"}
    assert cell_at(ping, "a", "c")["outcome"] == NOT_MEASURED
    assert counts(ping) == {"failed": 1, "passed": 1}
    assert node_totals(ping, "a") == (1, 1, 0, 1)


def test_matrix_adds_nodes_only_seen_in_results_and_is_empty_without_pairs() -> None:
    assert matrix_block([_pair("p", "x", "y", "passed")], ["a"])["nodes"] == ["a", "x", "y"]
    assert matrix_block([_node("dns", "a", "passed")], ["a"]) == {"nodes": [], "kinds": {}}


def test_per_node_block() -> None:
    results = [_node("egress_http", "a", "failed"), _node("dns[replica]", "b", "passed"),
               _node("egress_http", "b", "inconclusive"), _pair("p", "a", "b", "passed")]
    block = node_block(results, ["a", "b"])
    assert block["columns"] == {"egress_http": "", "dns[replica]": ""}
    assert block["rows"]["b"]["egress_http"]["outcome"] == "inconclusive"
    assert "p" not in block["rows"]["a"]


def test_terminal_matrix_grid_and_unknown_outcomes() -> None:
    results = [_pair("pod_to_pod", "n1", "n2", "failed"), _pair("pod_to_pod", "n2", "n1", "passed"),
               _pair("pod_to_pod", "n1", "n1", "not observed")]
    results.append(_pair("pod_http", "n2", "n1", "flaky"))
    lines = matrix_lines(matrix_block(results, ["n1", "n2"]))
    assert lines[1].split() == ["pod", "to", "pod", "pod", "http"]
    assert lines[2].split() == ["1", "2", "1", "2"]
    assert lines[3].split() == ["1", "n1", "?", "X", "-", "-"]
    assert lines[4].split() == ["2", "n2", ".", "-", "~", "-"]
    assert lines[4].index("~") > lines[1].index("pod http")  # each grid under its name


def test_terminal_matrix_aggregates_per_node_on_large_clusters() -> None:
    nodes = [f"n{i}" for i in range(MATRIX_NODES + 1)]
    results = [_pair("pod_to_pod", a, b, "failed" if b == "n7" and a != b else "passed")
               for a in nodes for b in nodes]
    lines = matrix_lines(matrix_block(results, nodes))
    assert len(lines) == 2
    assert "20 of 441 paths not passed; worst: n7 from 0/21 to 20/21, n0 from 1/21" in lines[1]
    assert lines[1].endswith("; 16 more node(s) with at most 1 each")
    healthy = [_pair("pod_to_pod", a, b, "passed") for a in nodes for b in nodes]
    assert "every path passed" in matrix_lines(matrix_block(healthy, nodes))[1]
