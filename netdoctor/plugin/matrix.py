"""A node-to-node matrix of expected vs observed results, for terminal and HTML.

Validate checks measure every ordered pair of nodes k of n times; the matrix shows
each cell as ``received/sent`` with its verdict, so a failing cell is named by
its node pair at a glance.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

OK, LOSS, FLAKY, FAIL, SKIP = "ok", "loss", "flaky", "fail", "skip"


@dataclass(frozen=True)
class Cell:
    """One ordered pair: how many of ``sent`` probes succeeded."""

    src: str
    dst: str
    ok: int
    sent: int
    expected: bool = True  # whether the path should work

    @property
    def verdict(self) -> str:
        """ok, loss (some lost), fail (all lost), skip (nothing sent), or the reverse."""
        if self.sent == 0:
            return SKIP
        if not self.expected:
            return OK if self.ok == 0 else FAIL
        if self.ok == self.sent:
            return OK
        return FAIL if self.ok == 0 else LOSS

    @property
    def label(self) -> str:
        """``3/3``-style text for the cell."""
        return "-" if self.sent == 0 else f"{self.ok}/{self.sent}"


@dataclass(frozen=True)
class Matrix:
    """All cells of one measurement (e.g. ``pod-to-pod ping``)."""

    title: str
    nodes: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, src: str, dst: str) -> Cell | None:
        """The cell for ``src -> dst``."""
        return next((c for c in self.cells if c.src == src and c.dst == dst), None)

    @property
    def failing(self) -> list[Cell]:
        """Cells whose observation differs from the expectation."""
        return [c for c in self.cells if c.verdict in (FAIL, LOSS)]

    def text(self) -> str:
        """A fixed-width table: rows are sources, columns destinations."""
        width = max([len(n) for n in self.nodes] + [7]) + 2
        lines = [self.title, "from \\ to".ljust(width) + "".join(n.ljust(width)
                                                               for n in self.nodes)]
        for src in self.nodes:
            row = src.ljust(width)
            for dst in self.nodes:
                c = self.cell(src, dst)
                mark = "" if c is None or c.verdict == OK else f" {c.verdict.upper()}"
                row += ((c.label if c else "") + mark).ljust(width)
            lines.append(row.rstrip())
        if self.failing:
            lines.append("failing: " + ", ".join(f"{c.src}->{c.dst} ({c.label})"
                                                 for c in self.failing))
        return "\n".join(lines)

    def html(self) -> str:
        """An HTML table with a class per verdict (ok, loss, fail, skip)."""
        head = "".join(f"<th>{html.escape(n)}</th>" for n in self.nodes)
        rows = []
        for src in self.nodes:
            cells = []
            for dst in self.nodes:
                c = self.cell(src, dst)
                if c is None:
                    cells.append("<td></td>")
                else:
                    cells.append(f'<td class="nd-{c.verdict}" title="{html.escape(src)} -&gt; '
                                 f'{html.escape(dst)}">{html.escape(c.label)}</td>')
            rows.append(f"<tr><th>{html.escape(src)}</th>{''.join(cells)}</tr>")
        return (f'<table class="nd-matrix"><caption>{html.escape(self.title)}</caption>'
                f"<tr><th>from \\ to</th>{head}</tr>{''.join(rows)}</table>")


def build(title: str, results: Iterable[tuple[str, str, int, int]],
          nodes: Iterable[str] | None = None) -> Matrix:
    """A matrix from ``(src, dst, ok, sent)`` tuples."""
    cells = tuple(Cell(s, d, ok, sent) for s, d, ok, sent in results)
    names = tuple(nodes) if nodes is not None else tuple(sorted({c.src for c in cells} |
                                                                 {c.dst for c in cells}))
    return Matrix(title, names, cells)
