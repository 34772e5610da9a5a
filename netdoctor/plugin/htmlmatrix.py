"""HTML of ``summary.json``'s ``matrix`` and ``per_node`` blocks: heatmaps and the node table.

Renders only; the blocks come from :mod:`netdoctor.plugin.matrix`. A cell opens (a
``<details>``) onto its check: the test id, outcome, the failure line and the evidence the
check attached, looked up by node id among the run's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from netdoctor.model import CheckResult
from netdoctor.plugin.matrix import NOT_MEASURED, cell_at
from netdoctor.redact import redact

KNOWN = ("passed", "failed", "flaky", "error", "skipped")
MARKS = {"passed": "ok", "failed": "FAIL", "flaky": "flaky", "error": "err",
         "skipped": "-", NOT_MEASURED: "-"}
DENSE_AT = 13
"""From this many nodes on, heatmap cells are colour only (the text is in the popup)."""
EVIDENCE_LINES = 15


def outcome_class(outcome: str) -> str:
    """The CSS class of an outcome; unknown outcomes (added by later versions) get ``other``."""
    if outcome in KNOWN:
        return f"nd-{outcome}"
    return "nd-not-measured" if outcome == NOT_MEASURED else "nd-other"


def _mark(outcome: str) -> str:
    return MARKS.get(outcome, outcome[:5] or "?")


def evidence_block(result: CheckResult | None) -> str:
    """A check's evidence (title, observation, reproduce command), escaped and redacted."""
    if result is None:
        return ""
    parts: list[str] = []
    for ev in result.evidence:
        parts.append(f"<div class=\"nd-label\">{escape(redact(ev.title))}</div>")
        lines = list(ev.lines)
        if lines:
            shown = lines[:EVIDENCE_LINES] + ([f"... {len(lines) - EVIDENCE_LINES} more lines"]
                                              if len(lines) > EVIDENCE_LINES else [])
            parts.append(f"<pre>{escape(redact(chr(10).join(shown)))}</pre>")
        if ev.command:
            parts.append(f"<div class=\"nd-label\">Reproduce</div>"
                         f"<pre>{escape(redact(ev.command))}</pre>")
    return "".join(parts)


def cell_html(cell: Mapping[str, str], label: str, results: Mapping[str, CheckResult],
              tag: str = "td") -> str:
    """One cell: its colour, its mark, and a popup with the check behind it."""
    outcome = str(cell.get("outcome", NOT_MEASURED))
    nodeid = str(cell.get("nodeid", ""))
    detail = str(cell.get("detail", ""))
    head = f"<b>{escape(label)}</b>: {escape(outcome)}"
    body = (f"<div>{head}</div>"
            + (f"<div><code>{escape(nodeid)}</code></div>" if nodeid else
               "<div class=\"nd-muted\">no check measured this path in this run</div>")
            + (f"<pre>{escape(redact(detail))}</pre>" if detail else "")
            + evidence_block(results.get(nodeid)))
    title = escape(f"{label}: {outcome}" + (f" - {redact(detail)}" if detail else ""))
    return (f'<{tag} class="nd-c {outcome_class(outcome)}" title="{title}" '
            f'data-outcome="{escape(outcome)}"><details><summary>{escape(_mark(outcome))}'
            f'</summary><div class="nd-pop">{body}</div></details></{tag}>')


def kind_label(kind: str) -> str:
    """``pod_to_pod`` -> ``pod to pod``."""
    return kind.replace("_", " ")


def heatmap(kind: str, block: Mapping[str, Any], nodes: Sequence[str],
            results: Mapping[str, CheckResult]) -> str:
    """One kind's node-by-node table: rows are sources, columns targets (numbered)."""
    dense = len(nodes) >= DENSE_AT
    head = "".join(f'<th title="{escape(n)}">{i}</th>' for i, n in enumerate(nodes, 1))
    rows = []
    for i, src in enumerate(nodes, 1):
        cells = "".join(cell_html(cell_at(block, src, dst), f"{src} -> {dst}", results)
                        for dst in nodes)
        rows.append(f"<tr><th>{i} {escape(src)}</th>{cells}</tr>")
    title = str(block.get("title", ""))
    return (f'<table class="nd-heat{" nd-dense" if dense else ""}" data-kind="{escape(kind)}">'
            f'<caption title="{escape(title)}">{escape(kind_label(kind))} '
            f'<span class="nd-muted">(from row to column)</span></caption>'
            f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def legend() -> str:
    """What the cell colours mean."""
    items = [("passed", "passed"), ("failed", "failed"), ("flaky", "flaky (passed after "
             "retries)"), ("error", "error"), (NOT_MEASURED, "not measured"),
             ("other", "other")]
    return ('<div class="nd-legend">' + "".join(
        f'<span class="{outcome_class(o) if o != "other" else "nd-other"}">{escape(t)}</span>'
        for o, t in items) + "</div>")


def heatmaps(matrix: Mapping[str, Any], results: Mapping[str, CheckResult]) -> str:
    """Every measured kind's heatmap, side by side, or a line saying none was measured."""
    kinds: Mapping[str, Any] = matrix.get("kinds") or {}
    nodes = list(matrix.get("nodes") or [])
    if not kinds:
        return ('<p class="nd-muted">No node-to-node path was measured in this run '
                "(no probe pods, or no check parametrized by node pair selected).</p>")
    maps = "".join(heatmap(k, b, nodes, results) for k, b in kinds.items())
    return f'<div class="nd-maps" id="nd-heatmaps">{maps}</div>{legend()}'


def node_table(per_node: Mapping[str, Any], causes: Sequence[Mapping[str, Any]],
               results: Mapping[str, CheckResult]) -> str:
    """One row per node: each per-node check's cell, then the root causes found there."""
    columns: Mapping[str, str] = per_node.get("columns") or {}
    rows: Mapping[str, Mapping[str, Any]] = per_node.get("rows") or {}
    nodes = list(per_node.get("nodes") or rows)
    if not columns:
        return ""
    head = "".join(f'<th title="{escape(t)}">{escape(kind_label(k))}</th>'
                   for k, t in columns.items())
    body = []
    for node in nodes:
        found = rows.get(node, {})
        cells = "".join(
            cell_html(found.get(k) or {"outcome": NOT_MEASURED}, f"{node}: {kind_label(k)}",
                      results) for k in columns)
        here = [c for c in causes if c.get("node") == node]
        notes = "".join(f"<div>{escape(redact(str(c.get('summary') or c.get('id'))))}</div>"
                        for c in here) or '<span class="nd-muted">-</span>'
        body.append(f'<tr><th>{escape(node)}</th>{cells}<td class="nd-here">{notes}</td></tr>')
    return (f'<table class="nd-nodes" id="nd-node-table"><thead><tr><th>node</th>{head}'
            f"<th>root causes on the node</th></tr></thead><tbody>{''.join(body)}</tbody>"
            "</table>")
