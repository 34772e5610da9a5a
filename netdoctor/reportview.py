"""A report as a reader first sees it: headless Chromium renders ``report.html`` at
1400x900, takes a screenshot, and says where the verdict, the top cause and the heatmaps lie.

Chromium runs with no network use of its own (no background networking, updates, sync or
QUIC) in a throwaway profile, under a deadline; the whole process group is killed when it
overruns. The layout is read through the DOM: a copy of the report gets a script, run after
the page's own, that writes each key part's bounding box into an attribute, and
``--dump-dom`` returns the page with it.

Example::

    view = measure(Path("reports/report.html"))
    assert not view.outside(), view.describe()
    screenshot(Path("reports/report.html"), Path("reports/report.png"))
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = (1400, 900)
DEADLINE = 90.0
KEY_PARTS = (
    ("verdict", "#nd-verdict"),
    ("top cause", "#nd-causes .nd-cause, #nd-causes > p"),
    ("heatmap", "#nd-heatmaps table.nd-heat, section > p.nd-muted"),
)
"""Name and CSS selector of each part that must lie on the first screen (the first match). A
healthy report has no cause: its "nothing to explain" line counts; a run without any
node-pair check has a line saying so instead of heatmaps."""

_PROBE = """<script>(function () {
  var parts = %s, out = {width: window.innerWidth, height: window.innerHeight,
                         scroll_width: document.documentElement.scrollWidth, boxes: []};
  parts.forEach(function (p) {
    var found = document.querySelectorAll(p[1]);
    var el = found[0];
    if (!el) { out.boxes.push({name: p[0], missing: true}); return; }
    var r = el.getBoundingClientRect();
    out.boxes.push({name: p[0], left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  });
  document.documentElement.setAttribute('data-nd-layout', JSON.stringify(out));
})();</script>"""


class BrowserError(RuntimeError):
    """Chromium is missing, failed, or overran its deadline."""


@dataclass(frozen=True)
class Box:
    """Where one key part lies (CSS pixels, relative to the first screen)."""

    name: str
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class View:
    """The first screen as Chromium laid it out."""

    width: int
    height: int
    boxes: tuple[Box, ...]
    missing: tuple[str, ...]
    page_width: int = 0
    """The page's scroll width: wider than the screen means a sideways scroll bar."""

    def outside(self) -> list[str]:
        """Key parts that are missing or not wholly within the first screen, and a page
        wider than the screen."""
        out = [f"{name}: not in the page" for name in self.missing]
        if self.page_width > self.width:
            out.append(f"page: {self.page_width} pixels wide")
        out += [f"{b.name}: at {b.left:.0f},{b.top:.0f}-{b.right:.0f},{b.bottom:.0f}"
                for b in self.boxes
                if b.top < 0 or b.left < 0 or b.bottom > self.height or b.right > self.width]
        return out

    def describe(self) -> str:
        """Every box, one per line."""
        return "\n".join([f"viewport {self.width}x{self.height}, page width {self.page_width}"] + [
            f"{b.name}: {b.left:.0f},{b.top:.0f} to {b.right:.0f},{b.bottom:.0f}"
            for b in self.boxes] + [f"{m}: missing" for m in self.missing])


def chromium_argv(profile: Path, *extra: str, binary: str = CHROMIUM) -> list[str]:
    """Headless Chromium that fetches nothing of its own, in the profile directory given."""
    width, height = VIEWPORT
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", *extra]


def _run(argv: list[str], deadline: float) -> str:
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    except FileNotFoundError as exc:
        raise BrowserError(f"{argv[0]} not found: install Debian's chromium "
                           "(scripts/bootstrap does)") from exc
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BrowserError(f"chromium did not finish within {deadline:.0f}s") from exc
    finally:
        # Processes Chromium left behind (zygote, renderers) go with their group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        raise BrowserError(f"chromium exited {proc.returncode}: {err.strip()[-600:]}")
    return out


def measure(report: Path, *, binary: str = CHROMIUM, deadline: float = DEADLINE,
            parts: Sequence[tuple[str, str]] = KEY_PARTS) -> View:
    """Lay ``report`` out at :data:`VIEWPORT` and return where ``parts`` (name, selector)
    lie."""
    page = report.read_text(encoding="utf-8")
    probe = _PROBE % json.dumps([list(p) for p in parts])
    at = page.rfind("</body>")
    page = page[:at] + probe + page[at:] if at >= 0 else page + probe
    with tempfile.TemporaryDirectory(prefix="netdoctor-view-") as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(page, encoding="utf-8")
        dom = _run(chromium_argv(Path(tmp) / "profile", "--dump-dom", copy.as_uri(),
                                 binary=binary), deadline)
    found = re.search(r'data-nd-layout="([^"]*)"', dom)
    if found is None:
        raise BrowserError("the layout probe did not run (no data-nd-layout in the DOM)")
    data = json.loads(html.unescape(found.group(1)))
    if int(data["width"]) != VIEWPORT[0]:
        raise BrowserError(f"laid out {data['width']} pixels wide, not {VIEWPORT[0]}")
    boxes = tuple(Box(b["name"], b["left"], b["top"], b["right"], b["bottom"])
                  for b in data["boxes"] if not b.get("missing"))
    missing = tuple(b["name"] for b in data["boxes"] if b.get("missing"))
    # The layout width is the window's; headless Chromium reports a shorter innerHeight while
    # the page loads than the screenshot shows (its full window), and vertical positions do
    # not depend on it: the first screen is the window, as in the screenshot.
    return View(VIEWPORT[0], VIEWPORT[1], boxes, missing, int(data.get("scroll_width", 0)))


def screenshot(report: Path, out: Path, *, binary: str = CHROMIUM,
               deadline: float = DEADLINE) -> Path:
    """A PNG of the first screen of ``report``, written to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netdoctor-view-") as tmp:
        _run(chromium_argv(Path(tmp) / "profile", f"--screenshot={out.resolve()}",
                           report.resolve().as_uri(), binary=binary), deadline)
    if not out.exists():
        raise BrowserError(f"chromium wrote no screenshot to {out}")
    return out


def add_parser(sub: Any) -> None:
    """``netdoctor report-view REPORT [--screenshot PNG]``."""
    parser = sub.add_parser(
        "report-view", help="open a report.html in headless Chromium: check that verdict, top "
        "cause and heatmaps lie on the first 1400x900 screen, optionally save a screenshot")
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None, help="PNG to write")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser binary ({CHROMIUM})")


def run(args: Any) -> int:
    """Exit 0 when every key part is on the first screen, 1 when not, 2 on a browser error."""
    if not args.report.is_file():
        print(f"netdoctor report-view: no such file: {args.report}", file=sys.stderr)
        return 2
    try:
        view = measure(args.report, binary=args.chromium)
        if args.screenshot is not None:
            screenshot(args.report, args.screenshot, binary=args.chromium)
            print(f"screenshot: {args.screenshot}")
    except BrowserError as exc:
        print(f"netdoctor report-view: {exc}", file=sys.stderr)
        return 2
    print(view.describe())
    problems = view.outside()
    for problem in problems:
        print(f"not on the first screen: {problem}", file=sys.stderr)
    return 1 if problems else 0
