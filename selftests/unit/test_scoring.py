"""Signals, score and verdict are pure functions of the results."""

from __future__ import annotations

import pytest

from netdoctor.model import CheckResult, Outcome
from netdoctor.plugin.scoring import (
    BUILTIN_SIGNALS,
    SIGNALS,
    Signal,
    Thresholds,
    analyze,
    failures_by_signal,
    present_signals,
    score,
    verdict,
)


def result(nodeid: str, outcome: Outcome, *signals: str) -> CheckResult:
    return CheckResult(nodeid=nodeid, outcome=outcome, signals=signals)


def test_six_signals_in_a_fixed_order() -> None:
    assert SIGNALS == ("coredns_crashloop", "kube_proxy_restarts", "flannel_missing",
                       "dns_timeouts", "service_endpoints_missing", "pod_connectivity_failed")
    assert [d.name for d in BUILTIN_SIGNALS] == list(SIGNALS)


@pytest.mark.parametrize("outcome", ["passed", "skipped", "error", "flaky"])
def test_only_failures_raise_signals(outcome: Outcome) -> None:
    present = present_signals([result("t::a", outcome, Signal.DNS_TIMEOUTS)], SIGNALS)
    assert not any(present.values())


def test_one_failure_among_passes_raises_its_signal() -> None:
    results = [result("t::a", "passed", Signal.DNS_TIMEOUTS),
               result("t::b", "failed", Signal.DNS_TIMEOUTS, Signal.COREDNS_CRASHLOOP)]
    present = present_signals(results, SIGNALS)
    assert [n for n, p in present.items() if p] == ["coredns_crashloop", "dns_timeouts"]
    assert set(present) == set(SIGNALS)
    assert failures_by_signal(results, SIGNALS)["dns_timeouts"] == (results[1],)


def test_unknown_signal_names_are_ignored_by_scoring() -> None:
    assert score(present_signals([result("t::a", "failed", "nope")], SIGNALS)) == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "none"), (1, "none"), (2, "partial"), (3, "partial"), (4, "confirmed"), (6, "confirmed")],
)
def test_default_thresholds(value: int, expected: str) -> None:
    assert verdict(value, Thresholds()) == expected


def test_custom_thresholds() -> None:
    assert verdict(1, Thresholds(confirmed=2, partial=1)) == "partial"
    assert verdict(2, Thresholds(confirmed=2, partial=1)) == "confirmed"


@pytest.mark.parametrize(("confirmed", "partial"), [(2, 3), (4, 0)])
def test_inconsistent_thresholds_rejected(confirmed: int, partial: int) -> None:
    with pytest.raises(ValueError, match="partial <= confirmed"):
        Thresholds(confirmed=confirmed, partial=partial)


def test_analyze_combines_everything() -> None:
    results = [result(f"t::{s}", "failed", s) for s in SIGNALS[:4]]
    results.append(result("t::skip", "skipped", Signal.FLANNEL_MISSING))
    analysis = analyze(results, BUILTIN_SIGNALS, Thresholds(), run_id="abc123")
    assert (analysis.score, analysis.verdict) == (4, "confirmed")
    assert analysis.skipped == (results[-1],)
    assert analysis.cluster == {}
