"""Node-by-node views of a run's results, as ``summary.json`` stores them.

A check parametrized by a node pair (``test_pod_ping[worker-1->worker-2]``) is one cell of its
kind's matrix; a check parametrized by a node (``test_egress_http[worker-1]``) is one cell of
the per-node table. Both are built once, from the :class:`~netdoctor.model.CheckResult`
objects of the run, and every report (terminal, HTML) renders these blocks instead of
measuring or judging anything again. A cell with no result is "not measured".

Example:
    >>> from netdoctor.model import CheckResult, Place
    >>> r = CheckResult("t.py::test_pod_ping[a->b]", "failed", message="ping a->b: 0/3 passed",
    ...                 place=Place("pod_ping", "Echo requests are answered.", "a", "b"))
    >>> block = matrix_block([r], ["a", "b"])
    >>> block["kinds"]["pod_ping"]["cells"]["a"]["b"]["outcome"]
    'failed'
    >>> cell_at(block["kinds"]["pod_ping"], "b", "a")["outcome"]
    'not measured'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netdoctor.model import CheckResult

NOT_MEASURED = "not measured"
GOOD = frozenset({"passed"})
BAD = frozenset({"failed", "error"})


def _cell(result: CheckResult) -> dict[str, str]:
    detail = result.flaky_reason or (result.message.splitlines()[0] if result.message else "")
    return {"outcome": result.outcome, "nodeid": result.nodeid, "detail": detail}


def _node_order(results: Iterable[CheckResult], nodes: Sequence[str]) -> list[str]:
    found = dict.fromkeys(nodes)
    for r in results:
        if r.place is not None:
            found.update(dict.fromkeys(n for n in (r.place.source, r.place.target) if n))
    return list(found)


def matrix_block(results: Sequence[CheckResult], nodes: Sequence[str] = ()) -> dict[str, Any]:
    """``summary.json``'s ``matrix``: every node-pair check, keyed by kind, source, target.

    Args:
        results: The run's results (only those with a node-pair place are used).
        nodes: The cluster's nodes, in order; nodes seen only in results are appended.

    Returns:
        ``{"nodes": [...], "kinds": {kind: {"title", "cells": {src: {dst: cell}}}}}``,
        a cell being ``{"outcome", "nodeid", "detail"}``.
    """
    pairs = [r for r in results if r.place is not None and r.place.target]
    kinds: dict[str, dict[str, Any]] = {}
    for r in pairs:
        assert r.place is not None
        kind = kinds.setdefault(r.place.kind, {"title": r.place.title, "cells": {}})
        kind["cells"].setdefault(r.place.source, {})[r.place.target] = _cell(r)
    used = _node_order(pairs, nodes) if pairs else []
    return {"nodes": used, "kinds": kinds}


def node_block(results: Sequence[CheckResult], nodes: Sequence[str] = ()) -> dict[str, Any]:
    """``summary.json``'s ``per_node``: every per-node check, keyed by node, then kind.

    Returns:
        ``{"nodes": [...], "columns": {kind: title}, "rows": {node: {kind: cell}}}``.
    """
    single = [r for r in results if r.place is not None and not r.place.target]
    columns: dict[str, str] = {}
    rows: dict[str, dict[str, dict[str, str]]] = {}
    for r in single:
        assert r.place is not None
        columns.setdefault(r.place.kind, r.place.title)
        rows.setdefault(r.place.source, {})[r.place.kind] = _cell(r)
    used = _node_order(single, nodes) if single else []
    return {"nodes": used, "columns": columns, "rows": rows}


def cell_at(kind: Mapping[str, Any], source: str, target: str) -> dict[str, str]:
    """The cell ``source -> target`` of one kind, or a "not measured" cell."""
    found = kind.get("cells", {}).get(source, {}).get(target)
    return dict(found) if found else {"outcome": NOT_MEASURED, "nodeid": "", "detail": ""}


def counts(kind: Mapping[str, Any]) -> dict[str, int]:
    """How many cells of a kind ended in each outcome."""
    found: dict[str, int] = {}
    for row in kind.get("cells", {}).values():
        for cell in row.values():
            found[cell["outcome"]] = found.get(cell["outcome"], 0) + 1
    return found


def node_totals(kind: Mapping[str, Any], node: str) -> tuple[int, int, int, int]:
    """``(bad from, measured from, bad to, measured to)`` for one node of a kind: the
    per-node aggregate shown instead of a matrix on large clusters."""
    cells = kind.get("cells", {})
    out = list(cells.get(node, {}).values())
    into = [row[node] for row in cells.values() if node in row]
    return (sum(1 for c in out if c["outcome"] not in GOOD), len(out),
            sum(1 for c in into if c["outcome"] not in GOOD), len(into))
