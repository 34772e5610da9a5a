"""Three outcomes per measurement, and the verdict when some signals could not be decided."""

from __future__ import annotations

from typing import Any

import pytest

from netdoctor.cluster.exec import Measured
from netdoctor.model import Attempt, CheckResult, NotObserved, Outcome
from netdoctor.plugin.scoring import (
    BUILTIN_SIGNALS,
    SIGNALS,
    Signal,
    Thresholds,
    analyze,
    decide_verdict,
    present_signals,
    undecided_signals,
)
from netdoctor.probes.commands import parse_dns_attempt, parse_ping_attempt
from netdoctor.probes.findings import dns_failures, ping_failure
from netdoctor.probes.network import DnsQuery, PairId
from netdoctor.probes.outcome import classify, require_observed, unobserved_reason

PING = ("ping", "-n", "-c", "1", "-w", "2", "10.244.1.5")
DIG = ("dig", "@10.96.0.10", "kubernetes.default.svc.cluster.local", "A", "+time=2",
       "+tries=1")
REPLY = ("PING 10.244.1.5 (10.244.1.5) 56(84) bytes of data.\n"
         "64 bytes from 10.244.1.5: icmp_seq=1 ttl=62 time=0.1 ms\n\n"
         "--- 10.244.1.5 ping statistics ---\n"
         "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
         "rtt min/avg/max/mdev = 0.1/0.1/0.1/0.0 ms\n")
LOSS = ("PING 10.244.1.5 (10.244.1.5) 56(84) bytes of data.\n\n"
        "--- 10.244.1.5 ping statistics ---\n"
        "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n")


def ping(*attempts: Attempt) -> Measured[Any]:
    return Measured(parse_ping_attempt(attempts[-1]), attempts, "kubectl exec -n nd p -- ping")


def dns(*attempts: Attempt) -> Measured[Any]:
    return Measured(parse_dns_attempt(attempts[-1]), attempts, "kubectl exec -n nd p -- dig")


LOST = Attempt(PING, None, error="no result within 7s", duration=7.0)
GONE = Attempt(PING, None, error='ServerError: pods "probe-w1" not found')


@pytest.mark.parametrize(("measured", "expected"), [
    (ping(Attempt(PING, 0, stdout=REPLY)), "good"),
    (ping(Attempt(PING, 1, stdout=LOSS)), "bad"),  # the probe's own timeout: an observation
    (ping(LOST, LOST, LOST), "not_observed"),  # the exec transport timed out
    (ping(GONE), "not_observed"),  # the pod was gone
    (ping(Attempt(PING, 0, stdout="garbage")), "not_observed"),  # output not understood
    (dns(Attempt(DIG, 0, stdout="10.96.0.1\n")), "good"),
    (dns(Attempt(DIG, 9, stdout=";; connection timed out; no servers could be reached\n")),
     "bad"),
    (dns(Attempt(DIG, None, error="ClientConnectorError: Cannot connect to host")),
     "not_observed"),
], ids=["ping-reply", "ping-own-timeout", "ping-transport-timeout", "ping-pod-gone",
        "ping-garbage", "dig-answer", "dig-own-timeout", "dig-api-down"])
def test_classify(measured: Measured[Any], expected: str) -> None:
    assert classify(measured) == expected


def test_reason_names_the_transport_error_and_the_command() -> None:
    m = ping(LOST, LOST, LOST)
    assert unobserved_reason(m) == "3 attempt(s), no result: no result within 7s"
    with pytest.raises(NotObserved, match=r"ping a->b: 3 attempt\(s\).*kubectl exec"):
        require_observed(m, "ping a->b")


def test_unobserved_ping_is_not_a_failure() -> None:
    from netdoctor.cluster.profile import ClusterProfile

    profile = ClusterProfile.__new__(ClusterProfile)
    with pytest.raises(NotObserved):
        ping_failure(PairId("a", "b"), ping(LOST), profile, "10.244.0.2", "10.244.1.2")


def test_dns_failures_prefer_an_observed_failure() -> None:
    failed = DnsQuery("a", "x.example", "10.96.0.10", dns(
        Attempt(DIG, 9, stdout=";; connection timed out; no servers could be reached\n")))
    unseen = DnsQuery("a", "kubernetes.default", "10.96.0.10",
                      dns(Attempt(DIG, None, error="no result within 7s")))
    assert [e.title for e in dns_failures([failed, unseen], "a")] == [
        "x.example at 10.96.0.10 from a: timeout"]
    with pytest.raises(NotObserved, match=r"lookups from a: kubernetes\.default"):
        dns_failures([unseen], "a")
    assert dns_failures([unseen], "b") == []  # another node's lookups


def test_not_observed_is_a_skip_for_pytest() -> None:
    assert isinstance(NotObserved("x"), pytest.skip.Exception)
    assert str(NotObserved("why")) == "why"


def result(nodeid: str, outcome: Outcome, *signals: str) -> CheckResult:
    return CheckResult(nodeid=nodeid, outcome=outcome, signals=signals)


def test_inconclusive_raises_no_signal() -> None:
    present = present_signals([result("t::a", "inconclusive", Signal.DNS_TIMEOUTS)], SIGNALS)
    assert not any(present.values())


HEALTHY_BUT_BLIND = [result(f"t::c{i}", "passed", s) for i, s in enumerate(SIGNALS[:4])] + [
    result("t::dns", "inconclusive", Signal.DNS_TIMEOUTS),
    result("t::ping", "inconclusive", Signal.POD_CONNECTIVITY_FAILED),
]


@pytest.mark.parametrize(("results", "verdict", "undecided"), [
    # every signal observed: the verdict stands
    ([result("t::a", "passed", s) for s in SIGNALS], "none", ()),
    # the API went away before the pings and lookups: 2 undecided could make it partial
    (HEALTHY_BUT_BLIND, "inconclusive", ("dns_timeouts", "pod_connectivity_failed")),
    # one undecided cannot lift a score of 0 to partial (2): none stands
    ([*HEALTHY_BUT_BLIND[:4], result("t::svc", "passed", Signal.SERVICE_ENDPOINTS_MISSING),
      HEALTHY_BUT_BLIND[4]], "none", ("dns_timeouts",)),
    # a signal present and observed stays present; its other checks' blindness is moot
    ([result("t::f", "failed", Signal.DNS_TIMEOUTS), result("t::i", "inconclusive",
                                                            Signal.DNS_TIMEOUTS)],
     "none", ()),
    # nothing observed at all (errors and inconclusive only): never "none"
    ([result("t::e", "error", Signal.COREDNS_CRASHLOOP),
      result("t::i", "inconclusive", Signal.DNS_TIMEOUTS)], "inconclusive", SIGNALS),
    ([], "inconclusive", SIGNALS),
    # 4 present is confirmed whatever the 2 undecided are
    ([*(result(f"t::{s}", "failed", s) for s in SIGNALS[:4]),
      result("t::dns2", "inconclusive", Signal.SERVICE_ENDPOINTS_MISSING)], "confirmed",
     ("service_endpoints_missing",)),
    # an error is a broken setup, not an undecided signal, once something was observed
    ([result("t::a", "passed", Signal.DNS_TIMEOUTS),
      result("t::e", "error", Signal.COREDNS_CRASHLOOP)], "none", ()),
], ids=["all-observed", "api-gone-mid-run", "one-undecided", "present-wins",
        "nothing-observed", "no-checks", "confirmed-regardless", "error-is-setup"])
def test_verdict_with_undecided_signals(results: list[CheckResult], verdict: str,
                                        undecided: tuple[str, ...]) -> None:
    analysis = analyze(results, BUILTIN_SIGNALS, Thresholds(), run_id="abc123")
    assert analysis.verdict == verdict
    assert analysis.undecided == undecided
    assert analysis.decided == analysis.applicable - len(undecided)


def test_not_applicable_signals_are_never_undecided() -> None:
    analysis = analyze(HEALTHY_BUT_BLIND, BUILTIN_SIGNALS, Thresholds(), run_id="abc123",
                       not_applicable={"dns_timeouts": "no cluster DNS"})
    assert analysis.undecided == ("pod_connectivity_failed",)
    assert analysis.verdict == "none"  # one undecided of 5 cannot reach partial


def test_decide_verdict_bounds() -> None:
    th = Thresholds(confirmed=4, partial=2)
    assert decide_verdict(2, 1, th) == "partial"  # 3 is still partial
    assert decide_verdict(3, 1, th) == "inconclusive"  # 4 would be confirmed
    assert undecided_signals([], {"a": None, "b": False}) == ("b",)
