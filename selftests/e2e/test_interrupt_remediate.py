"""Ctrl-C at five points of ``--remediate --yes`` on the incident: each time coherent reports,
exit status 8, nothing of the run left in the cluster; the next run goes on without
``--force`` and the last one completes the repair.

One lab for the module; the runs follow each other on it, as an operator's would: each
interrupted run leaves the cluster as far repaired as it got, and the next one finishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netdoctor.plugin.interrupts import EXIT_INTERRUPTED
from selftests.e2e.interruptrun import Stopped, interrupt_at, namespaces, wait_gone
from selftests.e2e.labrun import Lab, lab_up

# (point, the remediation.log line that says the run is there)
POINTS = (
    ("planning", r"created node probe"),
    ("consent", r"remediation mode=applied: .*--yes"),
    ("repair-step", r"exec node=\S+: set -e"),
    ("between-steps", r"applied \S+ node="),
    ("verification", r"verify: -m pytest"),
)


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = lab_up(tmp_path_factory.mktemp("incident") / "lab", "problem-statement")
    yield lab
    lab.down()


def _coherent(run: Stopped, point: str) -> None:
    __tracebackhide__ = True
    said = f"{point}: exit {run.returncode}\n{run.output[-4000:]}\n--- log ---\n{run.log}"
    assert run.point_seen, f"the run never reached {point}: {said}"
    assert run.returncode == EXIT_INTERRUPTED, said
    assert run.stop_seconds < 45, f"took {run.stop_seconds:.0f}s to stop: {said}"
    assert "Traceback" not in run.output, said
    assert "verdict: none" not in run.output, said
    assert "verdict: interrupted" in run.output, said
    for report in ("report.html", "summary.json", "analysis.md"):  # every report written
        assert f"/{report}" in run.output, said
    summary = run.summary
    assert summary.get("verdict") == "interrupted", said
    assert summary.get("interrupted") == "SIGINT", said
    block = summary.get("remediation") or {}
    assert block.get("mode") == "interrupted", said
    assert "SIGINT" in block.get("reason", ""), said
    assert "interrupted" in run.log, said
    statuses = {s["status"] for s in block.get("steps", [])}
    assert statuses <= {"applied", "skipped", "planned", "interrupted"}, block
    if point != "verification":  # work left is listed (a verification interrupt: none left)
        assert block.get("left") or not any(s["status"] == "planned" for s in block["steps"])


def test_sigint_at_five_points_then_the_repair_completes(incident: Lab, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    applied = 0
    for point, pattern in POINTS:
        also = (lambda: any(n.endswith("-v1") for n in namespaces(incident))) \
            if point == "verification" else (lambda: True)
        run = interrupt_at(incident, reports, pattern, also)
        _coherent(run, point)
        left = wait_gone(incident)
        assert left == [], f"{point}: left in the cluster: {left}"
        block = run.summary["remediation"]
        done = sum(1 for s in block["steps"] if s["status"] == "applied")
        if point == "planning":
            assert done == 0, run.log
        elif point == "consent":  # a step already in flight finishes, then it stops
            assert done <= 1, run.log
        else:  # every later run went on from where the last stopped, without --force
            assert "mode=refused" not in run.log, run.log
            applied += done
        if point == "verification":
            assert block["score_after"] is None, block
            assert "verify: interrupted (SIGINT); interrupting the verification run" in run.log
    assert applied > 0, "no interrupted run applied anything"
    final = interrupt_at(incident, reports, None)
    said = f"exit {final.returncode}\n{final.output[-4000:]}\n--- log ---\n{final.log}"
    assert final.returncode == 0, said
    block = final.summary.get("remediation") or {}
    assert final.summary["verdict"] == "none" or block.get("score_after") == 0, said
    assert wait_gone(incident) == []
