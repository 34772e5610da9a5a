"""Checks that could not observe: ``inconclusive``, never failed; an undecided verdict is
``inconclusive`` with its own exit status, in every report, and nothing is repaired."""

from __future__ import annotations

import json

import pytest

from netdoctor.plugin.remediate import EXIT_REFUSED
from netdoctor.plugin.scoring import EXIT_INCONCLUSIVE

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

CHECKS = """
import pytest
from netdoctor.model import NotObserved

pytestmark = pytest.mark.diagnose

@pytest.mark.signal("coredns_crashloop")
def test_coredns():
    pass

@pytest.mark.signal("kube_proxy_restarts")
def test_kube_proxy():
    pass

@pytest.mark.signal("flannel_missing")
def test_flannel():
    pass

@pytest.mark.signal("service_endpoints_missing")
def test_services():
    pass

@pytest.mark.signal("dns_timeouts")
def test_dns():
    raise NotObserved("lookups from w1: 3 attempt(s), no result: no result within 7s")

@pytest.fixture
def probes():
    raise NotObserved("probe pods: list pods in nd-1: no answer within 15s")

@pytest.mark.signal("pod_connectivity_failed")
def test_ping(probes):
    pass
"""


@pytest.fixture
def run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest(*PLUGIN, "-rA", "--report-dir=out")


def test_not_a_failure_for_pytest(run: pytest.RunResult) -> None:
    assert run.parseoutcomes() == {"passed": 4, "inconclusive": 2}
    run.stdout.fnmatch_lines(["*4 passed, 2 inconclusive*"])
    assert run.ret == EXIT_INCONCLUSIVE


def test_summary_json(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["verdict"] == "inconclusive"
    assert (summary["score"], summary["decided"], summary["applicable"]) == (0, 4, 6)
    assert summary["undecided"] == ["dns_timeouts", "pod_connectivity_failed"]
    assert summary["signals"]["dns_timeouts"] is False
    reasons = {e["nodeid"].split("::")[1]: e for e in summary["not_observed"]}
    assert reasons["test_dns"] == {
        "nodeid": "test_checks.py::test_dns", "outcome": "inconclusive",
        "reason": "not observed: lookups from w1: 3 attempt(s), no result: no result within 7s"}
    assert reasons["test_ping"]["reason"].startswith("not observed: probe pods: list pods")
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in summary["tests"]}
    assert outcomes["test_ping"] == outcomes["test_dns"] == "inconclusive"


def test_terminal_and_markdown(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    run.stdout.fnmatch_lines([
        "verdict: inconclusive (score 0/6) run *",
        "undecided: dns_timeouts, pod_connectivity_failed (decided 4 of 6; 2 check(s) not "
        "observed, reasons in analysis.md)",
    ])
    assert "verdict: none" not in run.stdout.str()
    md = (pytester.path / "out" / "analysis.md").read_text()
    assert "**Verdict: inconclusive**" in md
    assert "Undecided signals: dns_timeouts, pod_connectivity_failed (decided 4 of 6)" in md
    assert "## Not observed (inconclusive, raise no signal)" in md
    assert "- `test_checks.py::test_dns`: not observed: lookups from w1" in md


def test_verbose_status(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(*PLUGIN, "-v", "--report-dir=out", "-k", "dns")
    result.stdout.fnmatch_lines(["*test_checks.py::test_dns INCONCLUSIVE*"])


def test_nothing_observed_is_never_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(*PLUGIN, "--report-dir=out", "-k", "test_dns or test_ping")
    result.stdout.fnmatch_lines(["verdict: inconclusive (score 0/6) run *",
                                 "undecided: coredns_crashloop, *(decided 0 of 6;*"])
    assert result.ret == EXIT_INCONCLUSIVE


def test_remediation_never_runs_on_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(*PLUGIN, "--remediate", "--force",
                                           "--non-interactive", "--report-dir=out")
    result.stdout.fnmatch_lines(["*netdoctor remediation*", "mode: refused (verdict "
                                                            "inconclusive)*"])
    assert result.ret == EXIT_REFUSED
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["remediation"]["mode"] == "refused"
    assert summary["remediation"]["steps"] == []


LEFTOVER_CONFTEST = """
import types
import pytest
from netdoctor.suite.fixtures.cluster import SESSION
from netdoctor.cluster.probes import Leftover

@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    # a session whose cleanup could not reach the API
    session.config.stash[SESSION] = types.SimpleNamespace(
        probes=types.SimpleNamespace(unremoved=[
            Leftover("pod", "netdoctor-abc123", "probe-w1", "abc123"),
            Leftover("namespace", "", "netdoctor-abc123", "abc123")]),
        cluster=types.SimpleNamespace(problems=["API problem: delete pod probe-w1: gave up"]),
        leftovers=[], close=lambda: [])
"""


def test_leftovers_end_the_terminal_output(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LEFTOVER_CONFTEST)
    pytester.makepyfile("import pytest\n\n\n@pytest.mark.diagnose\ndef test_a():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--report-dir=out")
    result.stdout.fnmatch_lines([
        "*netdoctor: objects left in the cluster*",
        "pod netdoctor-abc123/probe-w1 (run abc123): kubectl delete pod -n netdoctor-abc123 "
        "probe-w1 --grace-period=0 --wait=false",
        "namespace netdoctor-abc123 (run abc123): kubectl delete namespace netdoctor-abc123 "
        "--wait=false",
    ])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert [x["command"] for x in summary["leftovers"]] == [
        "kubectl delete pod -n netdoctor-abc123 probe-w1 --grace-period=0 --wait=false",
        "kubectl delete namespace netdoctor-abc123 --wait=false"]
    assert summary["api_problems"] == ["API problem: delete pod probe-w1: gave up"]


IMAGE_CHECKS = """
import pytest
from netdoctor.model import ProbeNotStarted

pytestmark = pytest.mark.diagnose

@pytest.fixture
def probes():
    raise ProbeNotStarted("image problem on w2: ErrImagePull (mirror the image)")

@pytest.mark.signal("pod_connectivity_failed")
def test_ping(probes):
    pass

@pytest.mark.signal("flannel_missing")
def test_flannel():
    pass
"""


def test_a_probe_that_never_started_is_not_observed_and_an_error(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=IMAGE_CHECKS)
    run = pytester.runpytest(*PLUGIN, "--report-dir=out")
    assert run.parseoutcomes() == {"passed": 1, "errors": 1}
    assert run.ret == pytest.ExitCode.TESTS_FAILED  # the setup is broken: said by the status
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["not_observed"] == [{
        "nodeid": "test_checks.py::test_ping", "outcome": "error",
        "reason": "not observed: image problem on w2: ErrImagePull (mirror the image)"}]
    assert summary["signals"]["pod_connectivity_failed"] is False
    run.stdout.fnmatch_lines(["*image problem on w2: ErrImagePull*"])
