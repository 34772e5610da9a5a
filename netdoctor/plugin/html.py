"""pytest-html integration: evidence as per-test extras, netdoctor's block at the top.

Registered only when pytest-html is active and only on the controller (never on xdist workers).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from html import escape
from typing import Any

import pytest

from netdoctor.model import CheckResult, Evidence
from netdoctor.plugin.htmlpage import page_block
from netdoctor.plugin.results import report_data, report_evidence
from netdoctor.plugin.state import get_state
from netdoctor.redact import redact


def evidence_html(items: list[Evidence], signals: list[str]) -> str:
    """Evidence, reproduce commands and attempts as an HTML fragment (escaped, redacted)."""
    parts = ['<div class="netdoctor-evidence">']
    if signals:
        parts.append(f"<p><b>Signals:</b> {escape(', '.join(signals))}</p>")
    for ev in items:
        parts.append(f"<h4>{escape(redact(ev.title))}</h4>")
        if ev.lines:
            parts.append(f"<pre>{escape(redact(ev.text))}</pre>")
        if ev.command:
            parts.append(f"<p>Reproduce:</p><pre class=\"netdoctor-command\">"
                         f"{escape(redact(ev.command))}</pre>")
        for n, att in enumerate(ev.attempts, 1):
            status = f"exit {att.exit_code}" if att.exit_code is not None else escape(att.error)
            parts.append(f"<p>attempt {n}: <code>{escape(redact(' '.join(att.argv)))}</code> "
                         f"&rarr; {status} in {att.duration:.2f}s</p>")
    parts.append("</div>")
    return "".join(parts)


def evidence_text(items: list[Evidence]) -> str:
    """Evidence as plain text, full attempt output included (redacted)."""
    blocks = []
    for ev in items:
        block = [f"== {ev.title}", *ev.lines]
        if ev.command:
            block.append(f"$ {ev.command}")
        for n, att in enumerate(ev.attempts, 1):
            block += [f"-- attempt {n}: {' '.join(att.argv)} (exit {att.exit_code}, "
                      f"{att.duration:.2f}s) {att.error}".rstrip(),
                      "stdout:", att.stdout, "stderr:", att.stderr]
        blocks.append("\n".join(block))
    return redact("\n\n".join(blocks))


def summary_html(summary: Mapping[str, Any] | None, results: Iterable[CheckResult]) -> str:
    """netdoctor's block at the top of the report, from the ``summary.json`` document."""
    if summary is None:
        return "<p>netdoctor: no analysis (run interrupted before scoring)</p>"
    return page_block(summary, {r.nodeid: r for r in results})


class HtmlExtras:
    """Adds netdoctor data to pytest-html's report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Runs after the result collector's wrapper (tryfirst wrappers resume last)."""
        report = yield
        items = report_evidence(report)
        if not items:
            return report
        from pytest_html import extras

        signals = list(report_data(report).get("signals", ()))
        extra: list[dict[str, Any]] = [
            extras.html(evidence_html(items, signals)),
            extras.text(evidence_text(items), name=f"netdoctor evidence ({report.when})"),
        ]
        report.extras = [*getattr(report, "extras", []), *extra]  # type: ignore[attr-defined]
        return report

    def pytest_html_report_title(self, report: Any) -> None:
        """Name the page after the run."""
        report.title = f"netdoctor report, run {get_state(self.config).run_id}"

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """Put netdoctor's block (verdict, causes, signals, matrices) at the top."""
        state = get_state(self.config)
        results = state.analysis.results if state.analysis is not None else ()
        prefix.insert(0, summary_html(state.summary, results))
