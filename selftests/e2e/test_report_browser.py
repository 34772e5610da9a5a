"""report.html as a reader first sees it: rendered by headless Chromium at 1400x900, the
verdict, the top cause and the heatmaps must lie on the first screen without scrolling.

The incident's screenshot is kept in reports/ (``selftest-problem-statement.png``). The last
tests check the check itself on small pages."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from netdoctor.reportview import KEY_PARTS, VIEWPORT, BrowserError, measure, screenshot
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


PAGE = """<html><body style="margin:0">{spacer}
<div id="nd-verdict" style="height:50px">verdict</div>
<section id="nd-causes"><div class="nd-cause" style="height:100px">cause</div></section>
<div id="nd-heatmaps"><table class="nd-heat"><tr><td>x</td></tr></table></div>
</body></html>"""


def _page(tmp_path: Path, spacer: str) -> Path:
    path = tmp_path / "report.html"
    path.write_text(PAGE.format(spacer=spacer))
    return path


def test_parts_on_the_first_screen(tmp_path: Path) -> None:
    view = measure(_page(tmp_path, ""))
    assert view.outside() == []
    assert [b.name for b in view.boxes] == ["verdict", "top cause", "heatmap"]
    shot = screenshot(_page(tmp_path, ""), tmp_path / "out" / "shot.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parts_below_the_fold_or_missing_or_too_wide_are_reported(tmp_path: Path) -> None:
    below = measure(_page(tmp_path, '<div style="height:850px"></div>'))
    assert [p.split(":")[0] for p in below.outside()] == ["top cause", "heatmap"]
    wide = measure(_page(tmp_path, '<div style="width:1600px;height:1px"></div>'))
    assert wide.outside() == ["page: 1600 pixels wide"]
    page = tmp_path / "bare.html"
    page.write_text("<html><body><p>nothing</p></body></html>")
    assert measure(page).missing == ("verdict", "top cause", "heatmap")


def test_missing_browser_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BrowserError, match="not found"):
        measure(_page(tmp_path, ""), binary=str(tmp_path / "no-chromium"))
