"""The terminal summary, in the order of report.html's first screen: verdict, top causes with
the commands to confirm and fix them, a compact matrix per path kind, then the failing checks
under each present signal and the report paths. Causes and matrices come from ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from netdoctor.plugin.matrix import NOT_MEASURED, cell_at, node_totals
from netdoctor.plugin.scoring import Analysis
from netdoctor.redact import redact

SHOWN_CAUSES = 3
MATRIX_NODES = 20
"""Up to this many nodes a matrix is drawn; beyond, one line per node with failures."""
MARKS = {"passed": ".", "failed": "X", "flaky": "~", "error": "!", "skipped": "-",
         NOT_MEASURED: "-"}
WORST = 5
"""Nodes named per kind on large clusters."""
WIDTH = 110
"""Terminal columns the side-by-side grids fill at most."""
LEGEND = ". passed  X failed  ~ flaky  ! error  - not measured  ? other"


def unexplained_lines(unexplained: Sequence[str]) -> list[str]:
    """Failed or flaky checks no ranked cause explains (nothing when there are none)."""
    if not unexplained:
        return []
    return [f"unexplained ({len(unexplained)} failed or flaky check(s) no cause explains):",
            *(f"  {t}" for t in unexplained)]


def cause_lines(causes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The top causes with evidence and commands; the rest one line each."""
    lines = ["top causes:" if causes else "root causes: none found"]
    for n, c in enumerate(causes, 1):
        signals = [str(e) for e in c.get("explains") or [] if "::" not in str(e)]
        tests = c.get("explains_tests") or []
        conf = c.get("confidence")
        lines.append(f"  {n}. {c.get('summary') or c.get('id')} [{c.get('id')}"
                     + (f", confidence {conf:.2f}" if isinstance(conf, int | float) else "")
                     + "]" + (f" -> explains {', '.join(signals)}" if signals else "")
                     + (f" ({len(tests)} check(s))" if tests else ""))
        if n > SHOWN_CAUSES:
            continue
        lines += [f"     {line}" for line in list(c.get("contrast") or [])[:2]]
        lines += [f"     evidence: {e}" for e in list(c.get("evidence") or [])[:2]]
        lines += [f"     confirm: {cmd}" for cmd in c.get("confirm") or []]
        lines += [f"     fix:     {cmd}" for cmd in c.get("fix") or []]
    return lines


def _mark(outcome: str) -> str:
    return MARKS.get(outcome, "?")


def _grids(kinds: Mapping[str, Any], nodes: Sequence[str]) -> list[str]:
    """Kinds side by side (as many as fit in :data:`WIDTH`), one row per source node."""
    step = len(str(len(nodes))) + 1
    label = max(len(f"{len(nodes)} {n}") for n in nodes) + 4
    groups = [(k.replace("_", " "), b, max(len(k), step * len(nodes)) + 3)
              for k, b in kinds.items()]
    chunks: list[list[tuple[str, Any, int]]] = [[]]
    for group in groups:
        if chunks[-1] and label + sum(g[2] for g in chunks[-1]) + group[2] > WIDTH:
            chunks.append([])
        chunks[-1].append(group)
    lines = []
    for chunk in chunks:
        lines.append((" " * label + "".join(name.ljust(w) for name, _, w in chunk)).rstrip())
        numbers = "".join(str(i).rjust(step) for i in range(1, len(nodes) + 1))
        lines.append((" " * label + "".join(numbers.ljust(w) for _, _, w in chunk)).rstrip())
        for i, src in enumerate(nodes, 1):
            row = "".join("".join(_mark(cell_at(b, src, dst)["outcome"]).rjust(step)
                                  for dst in nodes).ljust(w) for _, b, w in chunk)
            lines.append(f"    {f'{i} {src}'.ljust(label - 4)}{row}".rstrip())
    return lines


def _worst_nodes(block: Mapping[str, Any], nodes: Sequence[str]) -> str:
    """The nodes most paths fail from or to, worst first, as ``node from a/b to c/d``."""
    totals = [(n, node_totals(block, n)) for n in nodes]
    bad = sorted(((n, t) for n, t in totals if t[0] or t[2]),
                 key=lambda item: -(item[1][0] + item[1][2]))
    if not bad:
        return "every path passed"
    cells = sum(t[1] for _, t in totals)
    failing = sum(t[0] for _, t in totals)
    shown = ", ".join(f"{n} from {a}/{b} to {c}/{d}" for n, (a, b, c, d) in bad[:WORST])
    rest = bad[WORST:]
    more = (f"; {len(rest)} more node(s) with at most {max(a + c for _, (a, _b, c, _d) in rest)}"
            " each" if rest else "")
    return f"{failing} of {cells} paths not passed; worst: {shown}{more}"


def matrix_lines(matrix: Mapping[str, Any]) -> list[str]:
    """Each kind as a grid of one-character cells (rows: from, columns: to), kinds side by
    side, or, on more than :data:`MATRIX_NODES` nodes, the nodes with failing cells and their
    counts."""
    kinds: Mapping[str, Any] = matrix.get("kinds") or {}
    nodes = [str(n) for n in matrix.get("nodes") or []]
    if not kinds:
        return []
    lines = [f"node to node ({LEGEND}):"]
    if len(nodes) <= MATRIX_NODES:
        return lines + _grids(kinds, nodes)
    for kind, block in kinds.items():
        lines.append(f"  {kind.replace('_', ' ')}: {_worst_nodes(block, nodes)}")
    return lines


def _healthy(analysis: Analysis) -> bool:
    return analysis.verdict == "none" and not any(analysis.signals.values()) and not any(
        r.outcome in ("failed", "error") for r in analysis.results)


def summary_lines(analysis: Analysis, written: Sequence[Path],
                  summary: Mapping[str, Any] | None = None) -> list[str]:
    """The lines of the ``netdoctor`` terminal section."""
    summary = summary or {}
    present = [n for n, p in analysis.signals.items() if p]
    lines = [f"verdict: {analysis.verdict} (score {analysis.score}/{analysis.applicable}"
             f"{': ' + ', '.join(present) if present else ''}) run {analysis.run_id}"
             + (" - healthy: no failure signal, no failed check" if _healthy(analysis) else "")]
    coverage = summary.get("coverage") or {}
    if coverage.get("statement"):
        lines.append(str(coverage["statement"]))
    for key in ("diagnose_measured", "validate_measured"):
        measured = summary.get(key) or {}
        if measured.get("narrowed") and measured.get("statement"):
            lines.append(str(measured["statement"]))
    if analysis.undecided:
        lines.append(f"undecided: {', '.join(analysis.undecided)} (decided {analysis.decided}"
                     f" of {analysis.applicable}; {len(analysis.not_observed)} check(s) not "
                     "observed, reasons in analysis.md)")
    if "root_causes" in summary:
        lines += cause_lines(summary["root_causes"])
        lines += unexplained_lines(summary.get("unexplained") or [])
    for what, why in (summary.get("root_causes_not_evaluated") or {}).items():
        lines.append(f"causes read from {what.replace('_', ' ')} not evaluated: {why}")
    lines += matrix_lines(summary.get("matrix") or {})
    for name, reason in analysis.not_applicable.items():
        lines.append(f"{name}: not applicable ({reason})")
    for name in present:
        lines.append(f"{name}:")
        for result in analysis.by_signal.get(name, ()):
            first = result.message.splitlines()[0] if result.message else ""
            lines.append(f"  FAILED {result.nodeid}" + (f" - {first}" if first else ""))
    flaky = [r for r in analysis.results if r.outcome == "flaky"]
    for result in flaky:
        lines.append(f"FLAKY {result.nodeid} - {result.flaky_reason}")
    skipped = len(analysis.skipped)
    if skipped:
        lines.append(f"{skipped} check(s) skipped (reasons in analysis.md)")
    for path in written:
        lines.append(f"report: {path}")
    return [redact(line) for line in lines]


def write_terminal_summary(
    terminalreporter: pytest.TerminalReporter, analysis: Analysis | None, written: Sequence[Path],
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Write the section (nothing when the run was not scored)."""
    if analysis is None:
        return
    terminalreporter.write_sep("=", "netdoctor")
    for line in summary_lines(analysis, written, summary):
        terminalreporter.write_line(line)
