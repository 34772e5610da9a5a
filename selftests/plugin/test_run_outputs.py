"""End-of-run outputs from real inner pytest runs: score, summary.json, analysis.md, HTML,
terminal, JUnit, flaky outcome, redaction, hooks and report placement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The entry point is blocked so an installed copy is not registered twice.
PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

ONE_CHECK = "import pytest\n@pytest.mark.diagnose\ndef test_a(): pass\n"

CHECKS = """
import pytest
from netdoctor.model import Attempt, CheckFailed, Evidence

pytestmark = pytest.mark.diagnose

@pytest.mark.dns
@pytest.mark.signal("dns_timeouts")
def test_dns(evidence):
    evidence.add("nslookup kubernetes.default from probe-a",
                 ";; connection timed out; no servers could be reached",
                 command="kubectl exec -n nd probe-a -- nslookup kubernetes.default",
                 attempts=[Attempt(("nslookup", "kubernetes.default"), 1, duration=5.0)])
    assert False, "DNS lookups time out"

@pytest.mark.signal("coredns_crashloop")
def test_coredns():
    raise CheckFailed("coredns-abc is CrashLoopBackOff", evidence=[Evidence(
        "coredns logs", ("Authorization: Bearer " + "-".join(["s3cr3t", "token", "value"]),
                         "read udp 10.244.0.22:55590->192.168.4.1:53: i/o timeout"),
        "kubectl -n kube-system logs coredns-abc --previous")])

@pytest.mark.signal("pod_connectivity_failed")
def test_ping():
    raise CheckFailed("10.244.1.5 unreachable from 10.244.2.7")

@pytest.mark.signal("flannel_missing")
def test_flannel():
    pass

@pytest.mark.signal("kube_proxy_restarts")
@pytest.mark.skip(reason="needs at least 2 schedulable nodes")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("probe pod never became ready")

@pytest.mark.signal("service_endpoints_missing")
def test_error(broken):
    pass

def test_flaky(evidence):
    evidence.add("nslookup attempts", "attempt 1: timeout", "attempt 2: 10.96.0.1")
    evidence.mark_flaky("answered on attempt 2 of 3")
"""


def load_summary(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "summary.json").read_text())
    return data


@pytest.fixture
def run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest(*PLUGIN, "-rA")


def test_pytest_outcomes_unchanged(run: pytest.RunResult) -> None:
    run.assert_outcomes(passed=1, failed=3, skipped=1, errors=1)
    run.stdout.fnmatch_lines(["*3 failed, 1 passed, 1 skipped*1 error, 1 flaky*"])
    assert run.ret == pytest.ExitCode.TESTS_FAILED


def test_summary_json(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    summary = load_summary(pytester.path / "reports")
    assert list(summary) == ["score", "verdict", "applicable", "signals", "signal_reasons",
                             "decided", "undecided", "not_observed", "tests", "cluster",
                             "run_id", "generated", "matrix", "per_node", "leftovers",
                             "api_problems"]
    assert summary["score"] == 3
    assert summary["verdict"] == "partial"
    assert summary["signals"] == {
        "coredns_crashloop": True, "kube_proxy_restarts": False, "flannel_missing": False,
        "dns_timeouts": True, "service_endpoints_missing": False,
        "pod_connectivity_failed": True,
    }
    tests = {t["nodeid"].split("::")[1]: t for t in summary["tests"]}
    assert {k: t["outcome"] for k, t in tests.items()} == {
        "test_dns": "failed", "test_coredns": "failed", "test_ping": "failed",
        "test_flannel": "passed", "test_skipped": "skipped", "test_error": "error",
        "test_flaky": "flaky",
    }
    assert tests["test_dns"]["signals"] == ["dns_timeouts"]
    assert all(isinstance(t["duration"], float) for t in tests.values())
    assert summary["cluster"] == {}
    assert len(summary["run_id"]) == 6


def test_analysis_md(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    md = (pytester.path / "reports" / "analysis.md").read_text()
    assert "**Verdict: partial** (score 3 of 6" in md
    assert "### coredns_crashloop: CoreDNS pods crash-loop or are not ready" in md
    assert "> coredns-abc is CrashLoopBackOff" in md
    assert "kubectl -n kube-system logs coredns-abc --previous" in md
    assert "> AssertionError: DNS lookups time out" in md
    assert "kubectl exec -n nd probe-a -- nslookup kubernetes.default" in md
    assert "- `test_checks.py::test_skipped`: needs at least 2 schedulable nodes" in md
    assert "- `test_checks.py::test_flaky`: answered on attempt 2 of 3" in md
    assert "probe pod never became ready" in md


def test_terminal_summary(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    run.stdout.fnmatch_lines([
        "*= netdoctor =*",
        "verdict: partial (score 3/6: coredns_crashloop, dns_timeouts, pod_connectivity_failed)*",
        "coredns_crashloop:",
        "  FAILED test_checks.py::test_coredns - coredns-abc is CrashLoopBackOff",
        "dns_timeouts:",
        "  FAILED test_checks.py::test_dns - AssertionError: DNS lookups time out",
        "pod_connectivity_failed:",
        "  FAILED test_checks.py::test_ping - 10.244.1.5 unreachable from 10.244.2.7",
        "FLAKY test_checks.py::test_flaky - answered on attempt 2 of 3",
        "1 check(s) skipped*",
        f"report: {pytester.path / 'reports' / 'report.html'}",
        f"report: {pytester.path / 'reports' / 'summary.json'}",
        f"report: {pytester.path / 'reports' / 'analysis.md'}",
    ])


def test_flaky_shown_in_verbose_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(*PLUGIN, "-v", "-k", "flaky")
    result.stdout.fnmatch_lines(["*test_checks.py::test_flaky FLAKY*", "*1 flaky*"])
    assert result.ret == pytest.ExitCode.OK


def test_html_report_with_extras(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    html = (pytester.path / "reports" / "report.html").read_text()
    assert 'data-verdict="partial"' in html
    assert "score 3 / 6 applicable signals" in html
    assert "netdoctor-evidence" in html
    assert "kubectl -n kube-system logs coredns-abc --previous" in html
    assert "nslookup kubernetes.default from probe-a" in html
    assert "netdoctor evidence (call)" in html  # the text extra's link name
    # self-contained: no separate assets directory
    assert not (pytester.path / "reports" / "assets").exists()


def test_secrets_never_reach_reports(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    for name in ("report.html", "summary.json", "analysis.md"):
        text = (pytester.path / "reports" / name).read_text()
        assert "s3cr3t-token-value" not in text, name
    md = (pytester.path / "reports" / "analysis.md").read_text()
    assert "Authorization: Bearer <redacted>" in md


def test_junitxml_still_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(*PLUGIN, "--junitxml=junit.xml")
    result.stdout.fnmatch_lines(["*generated xml file: *junit.xml*"])
    xml = (pytester.path / "junit.xml").read_text()
    assert 'tests="7"' in xml
    assert 'failures="3"' in xml
    assert 'errors="1"' in xml
    assert "coredns-abc is CrashLoopBackOff" in xml


def test_user_html_path_respected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_CHECK)
    pytester.runpytest(*PLUGIN, "--html=mine/out.html").assert_outcomes(passed=1)
    assert (pytester.path / "mine" / "out.html").exists()
    assert not (pytester.path / "reports" / "report.html").exists()
    assert (pytester.path / "reports" / "summary.json").exists()


def test_no_html_without_pytest_html(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_CHECK)
    result = pytester.runpytest(*PLUGIN, "-p", "no:html")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports" / "report.html").exists()
    result.stdout.fnmatch_lines([f"report: {pytester.path / 'reports' / 'summary.json'}"])


def test_older_reports_are_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_CHECK)
    pytester.runpytest(*PLUGIN, "--report-dir=out").assert_outcomes(passed=1)
    first = load_summary(pytester.path / "out")
    second_run = pytester.runpytest(*PLUGIN, "--report-dir=out")
    subdirs = [p for p in (pytester.path / "out").iterdir() if p.is_dir()]
    assert len(subdirs) == 1
    second = load_summary(subdirs[0])
    assert subdirs[0].name.endswith("-" + second["run_id"])
    assert load_summary(pytester.path / "out") == first
    assert (subdirs[0] / "report.html").exists()
    assert (subdirs[0] / "analysis.md").exists()
    second_run.stdout.fnmatch_lines([f"report: {subdirs[0] / 'summary.json'}"])


def test_overwrite_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_CHECK)
    pytester.runpytest(*PLUGIN, "--report-dir=out")
    pytester.runpytest(*PLUGIN, "--report-dir=out", "--overwrite-report")
    assert [p for p in (pytester.path / "out").iterdir() if p.is_dir()] == []


def test_collect_only_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_CHECK)
    pytester.runpytest(*PLUGIN, "--collect-only")
    assert not (pytester.path / "reports").exists()


def test_hooks_override_verdict_and_extend_summary(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest
        from netdoctor.plugin.state import set_cluster_profile

        def pytest_netdoctor_verdict(score, signals, config):
            return "confirmed" if signals["dns_timeouts"] else None

        def pytest_netdoctor_summary(summary, config):
            summary["generated_by"] = "conftest"

        @pytest.fixture(scope="session", autouse=True)
        def profile(request):
            set_cluster_profile(request.config, {"nodes": 3, "cni": "flannel",
                                                 "token": "do-not-leak"})
    """)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.signal("dns_timeouts")
        def test_dns(): assert False
    """)
    pytester.runpytest(*PLUGIN).assert_outcomes(failed=1)
    summary = load_summary(pytester.path / "reports")
    assert (summary["score"], summary["verdict"]) == (1, "confirmed")
    assert summary["generated_by"] == "conftest"
    assert summary["cluster"] == {"nodes": 3, "cni": "flannel", "token": "<redacted>"}


def test_thresholds_from_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.signal("dns_timeouts")
        def test_dns(): assert False
    """)
    pytester.runpytest(*PLUGIN, "--score-confirmed=1", "--score-partial=1")
    assert load_summary(pytester.path / "reports")["verdict"] == "confirmed"


def test_signals_on_parametrized_and_class_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.signal("pod_connectivity_failed")
        class TestPairs:
            @pytest.mark.parametrize("pair", ["node-a->node-b", "node-b->node-c"])
            def test_ping(self, pair):
                assert pair != "node-b->node-c"
    """)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1, failed=1)
    summary = load_summary(pytester.path / "reports")
    assert summary["signals"]["pod_connectivity_failed"] is True
    assert [t["outcome"] for t in summary["tests"]] == ["passed", "failed"]
