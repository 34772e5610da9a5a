"""report.html's netdoctor block, rendered from summary.json documents."""

from __future__ import annotations

from typing import Any

from netdoctor.model import CheckResult, Evidence
from netdoctor.plugin.htmlpage import page_block, remediation_html
from netdoctor.rootcause.playbook import commands

SIGNALS = {"coredns_crashloop": False, "kube_proxy_restarts": None, "flannel_missing": False,
           "dns_timeouts": False, "service_endpoints_missing": False,
           "pod_connectivity_failed": False}


def _summary(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "score": 0, "verdict": "none", "applicable": 5, "signals": dict(SIGNALS),
        "signal_reasons": {"kube_proxy_restarts": "kube-proxy is replaced by the CNI"},
        "tests": [{"nodeid": "t.py::test_a[n1->n2]", "outcome": "passed", "signals": [],
                   "duration": 0.1}],
        "cluster": {"server": "https://k8s.example:6443", "nodes": [{"name": "n1"}],
                    "cni": "cilium"},
        "run_id": "abc123", "generated": "2026-01-02T03:04:05+00:00", "root_causes": [],
        "matrix": {"nodes": ["n1", "n2"], "kinds": {"pod_to_pod": {"title": "t", "cells": {
            "n1": {"n2": {"outcome": "passed", "nodeid": "t.py::test_a[n1->n2]",
                          "detail": ""}}}}}},
        "per_node": {"nodes": [], "columns": {}, "rows": {}},
    }
    base.update(extra)
    return base


def test_healthy_says_so_in_one_line_at_the_top() -> None:
    page = page_block(_summary(), {})
    assert 'id="nd-healthy"' in page
    assert page.index('id="nd-verdict"') < page.index('id="nd-healthy"') < page.index(
        'id="nd-causes"')
    assert ">Healthy</span>" in page
    assert "score 0 / 5 applicable signals" in page
    assert "https://k8s.example:6443 · 1 nodes · CNI cilium · run abc123" in page
    assert "Nothing to explain." in page


def test_not_applicable_signal_badge_carries_its_reason() -> None:
    page = page_block(_summary(), {})
    assert ('class="nd-b nd-b-na" title="not applicable: kube-proxy is replaced by the CNI" '
            'data-signal="kube_proxy_restarts"') in page
    assert 'class="nd-b nd-b-absent"' in page


def test_unknown_verdict_and_outcome_render_as_they_are() -> None:
    summary = _summary(verdict="inconclusive", tests=[
        {"nodeid": "t.py::test_a[n1->n2]", "outcome": "not observed", "signals": []}])
    summary["matrix"]["kinds"]["pod_to_pod"]["cells"]["n1"]["n2"]["outcome"] = "not observed"
    page = page_block(summary, {})
    assert "Verdict: inconclusive" in page
    assert 'nd-v-unknown' in page
    assert 'class="nd-c nd-other" title="n1 -&gt; n2: not observed"' in page
    assert "<summary>not o</summary>" in page


def test_failures_escape_and_redact_what_they_show() -> None:
    cause = {"id": "x", "node": "n2", "summary": "<script>alert(1)</script>",
             "evidence": ["Authorization: Bearer abc.def.ghi"], "explains": ["dns_timeouts"],
             **{k: list(v) for k, v in vars(commands("ip-forward-off", "n2", "")).items()}}
    summary = _summary(verdict="partial", score=2, root_causes=[cause])
    summary["matrix"]["kinds"]["pod_to_pod"]["cells"]["n1"]["n2"] = {
        "outcome": "failed", "nodeid": "t.py::test_a[n1->n2]", "detail": "0/3 passed"}
    result = CheckResult("t.py::test_a[n1->n2]", "failed", evidence=(
        Evidence("ping n1->n2", ("token=s3cr3t-value-here",), "kubectl exec p -- ping x"),))
    page = page_block(summary, {result.nodeid: result})
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page
    assert "abc.def.ghi" not in page
    assert "kubectl debug node/n2 -it --image=busybox:1.36 -- cat /proc/sys/net/ipv4/ip_forward" \
        in page
    assert "sysctl -w net.ipv4.ip_forward=1" in page
    assert "kubectl exec p -- ping x" in page
    assert "nd-healthy" not in page


def test_remediation_side_by_side_and_unknown_keys_kept() -> None:
    block = {"mode": "applied", "reason": "verdict confirmed", "score_before": 6,
             "score_after": 0, "still_failing": ["t.py::test_b"],
             "steps": [{"name": "stray-cni-config", "node": "n2", "status": "applied",
                        "detail": "moved", "rollback": {"cmd": "mv back"}}],
             "plan": ["stray-cni-config on n2"]}
    summary = _summary(verdict="confirmed", score=6, remediation=block)
    summary["signals"]["dns_timeouts"] = True
    assert "Remediation applied: score 6 before, 0 after (below)." in page_block(summary, {})
    page = remediation_html(block, summary)
    assert "verdict confirmed, 0 failed check(s)" in page
    assert '<span class="nd-b nd-b-sig">dns_timeouts</span>' in page
    assert page.index(">Before<") < page.index("score 6") < page.index(">After (verification "
                                                                        "run)<")
    assert "score 0" in page
    assert "t.py::test_b" in page
    assert "<th>rollback</th>" in page
    assert "mv back" in page
    assert ">plan<" in page
    assert "stray-cni-config on n2" in page


def test_causes_show_confidence_contrast_tests_and_the_unexplained() -> None:
    cause = {"id": "vxlan-fdb-stale", "node": "n1", "peer": "n2", "summary": "n1: stale FDB",
             "confidence": 0.95, "contrast": ["expected FDB m dst 10.0.0.2 / observed 10.0.0.9"],
             "evidence": [], "explains": ["pod_connectivity_failed"],
             "explains_tests": ["t.py::test_a[n1->n2]"], "confirm": [], "fix": []}
    page = page_block(_summary(verdict="partial", root_causes=[cause],
                               unexplained=["t.py::test_b[n3]"]), {})
    assert "confidence 0.95 · between n1 and n2" in page
    assert "expected FDB m dst 10.0.0.2 / observed 10.0.0.9" in page
    assert "explains 1 failed or flaky check(s): t.py::test_a[n1-&gt;n2]" in page
    assert 'id="nd-unexplained"' in page
    assert "t.py::test_b[n3]" in page
    assert 'id="nd-unexplained"' not in page_block(_summary(unexplained=[]), {})
