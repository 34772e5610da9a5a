"""A third-party plugin adds a root-cause detector through ``pytest_netdoctor_detectors``;
its cause is ranked like the built-in ones, and what nothing explains is listed."""

from __future__ import annotations

import json

import pytest

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

CONFTEST = """
import pytest

from netdoctor.cluster.echo import Echo
from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import ClusterProfile
from netdoctor.plugin.validation import VALIDATION, RunInputs
from netdoctor.probes.validate import ValidatePlan, Validation
from netdoctor.rootcause.ranking import Candidate


def widget_detector(obs):
    for check in obs.checks:
        if check.place is not None and check.place.kind == "widget":
            yield Candidate("acme-widget-broken", check.place.source,
                            f"{check.place.source}: the acme widget is broken",
                            ("widget state: off",), frozenset(), 1,
                            breaks=(("widget", "pair"),), confidence=0.7,
                            contrast=("expected widget on / observed off",))


def pytest_netdoctor_detectors(config):
    return [widget_detector]


@pytest.fixture(scope="session", autouse=True)
def measured(request):
    # What the validate pass leaves for the ranking, for a cluster with nothing in it.
    plan = ValidatePlan("nd", "r1", "img", "img", 1.0, 1.0)
    profile = ClusterProfile("https://api", (), "", "", "flannel", None, None, "", None)
    request.config.stash[VALIDATION] = RunInputs(
        Validation(plan, Echo("nd", "r1"), ProbeSet("nd", "r1")), profile, ())
"""

CHECKS = """
import pytest
from netdoctor.model import CheckFailed

pytestmark = pytest.mark.validate

@pytest.mark.parametrize("node", ["worker-1"])
def test_widget(node):
    raise CheckFailed("widget off")

@pytest.mark.parametrize("node", ["worker-2"])
def test_gadget(node):
    raise CheckFailed("gadget off")
"""


def test_plugin_detector_ranks_and_the_rest_is_unexplained(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    run = pytester.runpytest(*PLUGIN)
    run.assert_outcomes(failed=2)
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text())
    causes = summary["root_causes"]
    assert [(c["id"], c["node"], c["peer"]) for c in causes] == [
        ("acme-widget-broken", "worker-1", None)]
    assert causes[0]["explains_tests"] == ["test_checks.py::test_widget[worker-1]"]
    assert causes[0]["confidence"] == 0.7
    assert causes[0]["contrast"] == ["expected widget on / observed off"]
    assert summary["unexplained"] == ["test_checks.py::test_gadget[worker-2]"]
    run.stdout.fnmatch_lines([
        "top causes:",
        "  1. worker-1: the acme widget is broken "
        "?acme-widget-broken, confidence 0.70? (1 check(s))",
        "     expected widget on / observed off",
        "unexplained (1 failed or flaky check(s) no cause explains):",
        "  test_checks.py::test_gadget[worker-2]",
    ])
    md = (pytester.path / "reports" / "analysis.md").read_text()
    assert "## Unexplained" in md
    assert "- `test_checks.py::test_gadget[worker-2]`" in md


def test_without_the_plugin_nothing_ranks_and_everything_is_listed(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.replace("return [widget_detector]", "return []"))
    pytester.makepyfile(test_checks=CHECKS)
    pytester.runpytest(*PLUGIN)
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text())
    assert summary["root_causes"] == []
    assert summary["unexplained"] == ["test_checks.py::test_widget[worker-1]",
                                      "test_checks.py::test_gadget[worker-2]"]
