"""The terminal summary: verdict, score, failing checks under each present signal, report paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from netdoctor.plugin.scoring import Analysis
from netdoctor.redact import redact


def summary_lines(analysis: Analysis, written: Sequence[Path]) -> list[str]:
    """The lines of the ``netdoctor`` terminal section."""
    present = [n for n, p in analysis.signals.items() if p]
    lines = [f"verdict: {analysis.verdict} (score {analysis.score}/{analysis.applicable}"
             f"{': ' + ', '.join(present) if present else ''}) run {analysis.run_id}"]
    if analysis.undecided:
        lines.append(f"undecided: {', '.join(analysis.undecided)} (decided {analysis.decided}"
                     f" of {analysis.applicable}; {len(analysis.not_observed)} check(s) not "
                     "observed, reasons in analysis.md)")
    for name, reason in analysis.not_applicable.items():
        lines.append(f"{name}: not applicable ({reason})")
    for name in present:
        lines.append(f"{name}:")
        for result in analysis.by_signal.get(name, ()):
            first = result.message.splitlines()[0] if result.message else ""
            lines.append(f"  FAILED {result.nodeid}" + (f" - {redact(first)}" if first else ""))
    flaky = [r for r in analysis.results if r.outcome == "flaky"]
    for result in flaky:
        lines.append(f"FLAKY {result.nodeid} - {result.flaky_reason}")
    skipped = len(analysis.skipped)
    if skipped:
        lines.append(f"{skipped} check(s) skipped (reasons in analysis.md)")
    for path in written:
        lines.append(f"report: {path}")
    return lines


def write_terminal_summary(
    terminalreporter: pytest.TerminalReporter, analysis: Analysis | None, written: Sequence[Path]
) -> None:
    """Write the section (nothing when the run was not scored)."""
    if analysis is None:
        return
    terminalreporter.write_sep("=", "netdoctor")
    for line in summary_lines(analysis, written):
        terminalreporter.write_line(line)
