"""Report files: where they go, ``summary.json`` and writing them.

One set per run: ``report.html`` (pytest-html), ``summary.json`` and ``analysis.md``. When any of
them already exists in the report directory and overwriting was not asked for, the run writes
into ``<report-dir>/<timestamp>-<run-id>/`` so earlier runs stay intact. All text passes through
:func:`netdoctor.redact.redact` on its way out.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netdoctor.plugin.markdown import render_markdown
from netdoctor.plugin.matrix import matrix_block, node_block
from netdoctor.plugin.scoring import Analysis
from netdoctor.plugin.state import ReportPaths
from netdoctor.redact import redact, redact_data

HTML_NAME = "report.html"
JSON_NAME = "summary.json"
MARKDOWN_NAME = "analysis.md"
REPORT_NAMES = (HTML_NAME, JSON_NAME, MARKDOWN_NAME)


def plan_report_paths(
    directory: Path, *, overwrite: bool, run_id: str, now: datetime, html: Path | None
) -> ReportPaths:
    """Choose this run's report paths without creating anything.

    Args:
        directory: The configured report directory.
        overwrite: Reuse ``directory`` even when it holds earlier reports.
        run_id: This run's id (part of the subfolder name).
        now: The run's start time (part of the subfolder name).
        html: The HTML report path chosen by the user, or ``None`` to place it with the others.
    """
    if not overwrite and any((directory / name).exists() for name in REPORT_NAMES):
        directory = directory / f"{now:%Y%m%d-%H%M%S}-{run_id}"
    return ReportPaths(
        directory=directory,
        html=html or directory / HTML_NAME,
        json=directory / JSON_NAME,
        markdown=directory / MARKDOWN_NAME,
    )


def report_dir_problem(directory: Path) -> str | None:
    """Why reports cannot be written into ``directory``, or ``None``; leaves nothing behind.

    A directory that does not exist yet is tried by creating its first missing level and
    removing it again (permission bits say nothing for root or a read-only filesystem).

    Example:
        >>> report_dir_problem(Path("/dev/null/reports"))
        '/dev/null is not a directory'
    """
    missing: Path | None = None
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        missing, probe = probe, probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    try:
        if missing is None:
            with tempfile.TemporaryFile(dir=probe):
                pass
        else:
            os.mkdir(missing)
            os.rmdir(missing)
    except OSError as exc:
        where = f"create {missing}" if missing is not None else f"write in {probe}"
        return f"cannot {where}: {exc.strerror or exc}"
    return None


def cluster_nodes(analysis: Analysis) -> list[str]:
    """The cluster's node names as the published profile lists them (may be empty)."""
    nodes = analysis.cluster.get("nodes")
    if not isinstance(nodes, list):
        return []
    return [str(n["name"]) for n in nodes if isinstance(n, dict) and n.get("name")]


def build_summary(analysis: Analysis, now: datetime | None = None) -> dict[str, Any]:
    """The ``summary.json`` document (documented in ``docs/summary-json.md``)."""
    nodes = cluster_nodes(analysis)
    return {
        "score": analysis.score,
        "verdict": analysis.verdict,
        "applicable": analysis.applicable,
        "signals": dict(analysis.signals),
        "signal_reasons": dict(analysis.not_applicable),
        "decided": analysis.decided,
        "undecided": list(analysis.undecided),
        "not_observed": [{"nodeid": r.nodeid, "outcome": r.outcome, "reason": r.message}
                         for r in analysis.not_observed],
        "tests": [
            {
                "nodeid": r.nodeid,
                "outcome": r.outcome,
                "signals": list(r.signals),
                "duration": round(r.duration, 4),
            }
            for r in analysis.results
        ],
        "cluster": dict(analysis.cluster),
        "run_id": analysis.run_id,
        "generated": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "matrix": matrix_block(analysis.results, nodes),
        "per_node": node_block(analysis.results, nodes),
    }


def write_reports(analysis: Analysis, summary: dict[str, Any], paths: ReportPaths) -> list[Path]:
    """Write ``summary.json`` and ``analysis.md``; return the paths written."""
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.json.write_text(
        json.dumps(redact_data(summary), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    markdown = render_markdown(analysis, summary.get("root_causes"),
                               summary.get("unexplained") or ())
    paths.markdown.write_text(redact(markdown), encoding="utf-8")
    return [paths.json, paths.markdown]
