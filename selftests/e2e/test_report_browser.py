"""report.html as a reader first sees it: rendered by headless Chromium at 1400x900, the
verdict, the top cause and the heatmaps must lie on the first screen without scrolling.

The incident's screenshot is kept in reports/ (``selftest-problem-statement.png``)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from netdoctor.reportview import KEY_PARTS, VIEWPORT, measure, screenshot
from selftests.e2e.labrun import REPO, Lab, lab_up, run_diagnose

SHOT = REPO / "reports" / "selftest-problem-statement.png"


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_incident_first_screen(tmp_path: Path) -> None:
    lab = lab_up(tmp_path / "lab", "problem-statement")
    try:
        run = run_diagnose(lab.kubeconfig, tmp_path / "r")
    finally:
        lab.down()
    causes = run.summary.get("root_causes") or []
    assert run.summary.get("verdict") in ("confirmed", "partial"), run.output[-3000:]
    assert causes, run.output[-3000:]
    report = tmp_path / "r" / "report.html"
    page = report.read_text()
    first = re.search(r'data-cause="([^"]+)"', page)
    assert first is not None
    assert first.group(1) == causes[0]["id"]
    assert 'data-kind="pod_to_pod"' in page
    view = measure(report)
    assert not view.outside(), view.describe()
    assert {b.name for b in view.boxes} == {name for name, _ in KEY_PARTS}, view.describe()
    assert screenshot(report, SHOT) == SHOT
    assert _png_size(SHOT) == VIEWPORT


def test_healthy_report_says_so_on_top(healthy_lab: Lab, tmp_path: Path) -> None:
    run = run_diagnose(healthy_lab.kubeconfig, tmp_path / "r")
    assert run.returncode == 0, run.output[-3000:]
    report = tmp_path / "r" / "report.html"
    assert "Healthy: no failure signal and no failed check" in report.read_text()
    view = measure(report, parts=(*KEY_PARTS, ("healthy line", "#nd-healthy")))
    assert not view.outside(), view.describe()
    healthy = next(b for b in view.boxes if b.name == "healthy line")
    verdict = next(b for b in view.boxes if b.name == "verdict")
    assert verdict.bottom <= healthy.top < 200, view.describe()
