"""Report placement, summary.json shape and analysis.md content, without pytest runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from netdoctor.model import Attempt, CheckResult, Evidence
from netdoctor.plugin.markdown import render_markdown
from netdoctor.plugin.reports import build_summary, plan_report_paths
from netdoctor.plugin.scoring import BUILTIN_SIGNALS, Analysis, Thresholds, analyze

NOW = datetime(2025, 1, 2, 3, 4, 5)


def test_fresh_directory_is_used_directly(tmp_path: Path) -> None:
    paths = plan_report_paths(tmp_path, overwrite=False, run_id="abc123", now=NOW, html=None)
    assert paths.directory == tmp_path
    assert (paths.html, paths.json, paths.markdown) == (
        tmp_path / "report.html", tmp_path / "summary.json", tmp_path / "analysis.md")


def test_existing_reports_get_a_new_subfolder(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text("{}")
    paths = plan_report_paths(tmp_path, overwrite=False, run_id="abc123", now=NOW, html=None)
    assert paths.directory == tmp_path / "20250102-030405-abc123"
    assert plan_report_paths(tmp_path, overwrite=True, run_id="x", now=NOW, html=None
                             ).directory == tmp_path


def test_user_html_path_kept(tmp_path: Path) -> None:
    paths = plan_report_paths(tmp_path, overwrite=False, run_id="a", now=NOW,
                              html=Path("mine.html"))
    assert paths.html == Path("mine.html")


def _analysis() -> Analysis:
    attempt = Attempt(("nslookup", "kubernetes.default"), 1,
                      stdout=";; connection timed out; no servers could be reached", duration=5.0)
    ev = Evidence("nslookup from probe-a", ("no servers could be reached",),
                  "kubectl exec -n nd probe-a -- nslookup kubernetes.default", (attempt,))
    results = [
        CheckResult("t.py::test_dns", "failed", ("dns_timeouts",), 5.1, "DNS timed out", (ev,)),
        CheckResult("t.py::test_flannel", "passed", ("flannel_missing",), 0.2),
        CheckResult("t.py::test_x", "skipped", ("pod_connectivity_failed",), 0.0,
                    "needs at least 2 schedulable nodes"),
        CheckResult("t.py::test_y", "flaky", (), 1.0, flaky_reason="answered on attempt 2"),
        CheckResult("t.py::test_z", "error", ("coredns_crashloop",), 0.1, "fixture broke"),
    ]
    return analyze(results, BUILTIN_SIGNALS, Thresholds(), run_id="abc123",
                   cluster={"nodes": 3})


def test_summary_shape() -> None:
    summary = build_summary(_analysis())
    assert list(summary) == ["score", "verdict", "applicable", "signals", "signal_reasons",
                             "decided", "undecided", "not_observed", "tests", "cluster",
                             "run_id", "generated", "matrix", "per_node"]
    assert summary["score"] == 1
    assert summary["verdict"] == "none"
    assert summary["signals"]["dns_timeouts"] is True
    assert summary["signals"]["coredns_crashloop"] is False
    assert summary["tests"][0] == {"nodeid": "t.py::test_dns", "outcome": "failed",
                                   "signals": ["dns_timeouts"], "duration": 5.1}
    assert [t["outcome"] for t in summary["tests"]] == [
        "failed", "passed", "skipped", "flaky", "error"]
    assert summary["cluster"] == {"nodes": 3}
    assert summary["applicable"] == 6
    assert summary["signal_reasons"] == {}


def test_not_applicable_signal_is_null_and_not_counted() -> None:
    results = [CheckResult("t.py::test_kp", "failed", ("kube_proxy_restarts",), 0.1, "gone"),
               CheckResult("t.py::test_dns", "failed", ("dns_timeouts",), 0.1, "timeout")]
    analysis = analyze(results, BUILTIN_SIGNALS, Thresholds(), run_id="abc123",
                       not_applicable={"kube_proxy_restarts": "replaced by the CNI"})
    summary = build_summary(analysis)
    assert summary["signals"]["kube_proxy_restarts"] is None
    assert summary["signal_reasons"] == {"kube_proxy_restarts": "replaced by the CNI"}
    assert (summary["score"], summary["applicable"]) == (1, 5)
    assert "score 1 of 5" in render_markdown(analysis)


def test_markdown_explains_the_run() -> None:
    md = render_markdown(_analysis())
    assert "**Verdict: none** (score 1 of 6" in md
    assert "### dns_timeouts: DNS queries from pods time out" in md
    assert "> DNS timed out" in md
    assert "kubectl exec -n nd probe-a -- nslookup kubernetes.default" in md
    assert "attempt 1: `nslookup kubernetes.default` -> exit 1 in 5.00s" in md
    assert "- `t.py::test_x`: needs at least 2 schedulable nodes" in md
    assert "- `t.py::test_y`: answered on attempt 2" in md
    assert "Other failures and errors" in md
    assert "fixture broke" in md
    assert '"nodes": 3' in md


def test_markdown_fence_survives_backticks() -> None:
    ev = Evidence("weird", ("```", "still inside"))
    analysis = analyze([CheckResult("t::a", "failed", ("dns_timeouts",), evidence=(ev,))],
                       BUILTIN_SIGNALS, Thresholds(), run_id="r")
    assert "````text\n```\nstill inside\n````" in render_markdown(analysis)
