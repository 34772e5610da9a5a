"""Findings of the validate checks: k-of-n series judged, missing path ends explained.

A series where every measurement passed is a pass; some passed is ``flaky`` (a pass with
its loss attached as evidence); none passed is a failure with every attempt attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pytest

from netdoctor.cluster.echo import Echo
from netdoctor.cluster.exec import Measured
from netdoctor.cluster.probes import ProbeSet
from netdoctor.model import CheckFailed, Evidence, make_evidence
from netdoctor.probes.findings import probe_missing
from netdoctor.probes.network import PairId
from netdoctor.probes.paths import Series


class Recorder(Protocol):
    """What a check's ``evidence`` fixture offers."""

    def extend(self, items: Sequence[Evidence]) -> None:
        """Attach evidence."""

    def mark_flaky(self, reason: str) -> None:
        """Make the outcome ``flaky``."""


def _describe(m: Measured[Any]) -> str:
    r = m.result
    if getattr(r, "http_code", None) is not None or hasattr(r, "curl_exit"):
        return (f"HTTP {r.http_code}" if r.http_code else (r.error or f"curl exit {r.curl_exit}"))
    if hasattr(r, "received"):
        return "reply" if r.ok else (r.error or f"{r.loss_percent:g}% loss")
    if hasattr(r, "status"):
        return f"{r.status} {' '.join(r.addresses)}".strip()
    return "ok" if r.ok else "failed"


def series_evidence(what: str, s: Series[Any]) -> Evidence:
    """One evidence item for a series: the ratio, each run's result, the command."""
    return make_evidence(f"{what}: {s.ratio} passed",
                         [f"run {i}: {_describe(m)}" for i, m in enumerate(s.runs, 1)],
                         command=s.runs[0].command if s.runs else "", attempts=s.attempts)


def judge(evidence: Recorder, what: str, s: Series[Any] | None, hint: str = "") -> None:
    """Fail when nothing passed, mark flaky when only some did."""
    __tracebackhide__ = True
    if s is None or s.sent == 0:
        raise CheckFailed(f"{what}: not measured", [make_evidence(f"{what}: not measured",
                                                                  hint or "no measurement")])
    ev = series_evidence(what, s)
    if s.passed == 0:
        raise CheckFailed(f"{what}: {s.ratio} passed" + (f" ({hint})" if hint else ""), [ev])
    if s.passed < s.sent:
        evidence.extend([ev])
        evidence.mark_flaky(f"{what}: {s.ratio} passed")


def expect_ok(what: str, m: Measured[Any] | None) -> None:
    """Fail unless the single measurement passed."""
    __tracebackhide__ = True
    if m is None:
        raise CheckFailed(f"{what}: not measured", [make_evidence(f"{what}: not measured",
                                                                  "no measurement")])
    if not m.result.ok:
        raise CheckFailed(f"{what}: {_describe(m)}", [make_evidence(
            f"{what}: {_describe(m)}", _describe(m), command=m.command, attempts=m.attempts)])


def not_ok(items: Sequence[tuple[str, Measured[Any]]]) -> list[Evidence]:
    """Evidence for each ``(what, measurement)`` that did not pass."""
    return [make_evidence(f"{what}: {_describe(m)}", _describe(m), command=m.command,
                          attempts=m.attempts) for what, m in items if not m.result.ok]


def need_probe(probes: ProbeSet, node: str) -> None:
    """Skip when ``node``'s probe could not start for a setup reason; fail when its pod
    network could not be set up (a finding about that node)."""
    __tracebackhide__ = True
    if node in probes.ready:
        return
    failure = probes.failed.get(node)
    ev = probe_missing(node, failure, probes.skipped_nodes.get(node, ""))
    if failure is not None and failure.network_setup_failed:
        raise CheckFailed(f"no pod network on {node}", [ev])
    pytest.skip(ev.title)


def need_echo(echo: Echo, node: str) -> str:
    """The echo pod IP on ``node``; fail when it never got a pod network there."""
    __tracebackhide__ = True
    pod = echo.pods.get(node)
    if pod is not None and pod.ip:
        return pod.ip
    lines = [pod.problem, *pod.events] if pod else ["no echo pod on the node"]
    ev = make_evidence(f"echo pod on {node} has no address", lines,
                       command=f"kubectl describe pod -n {echo.namespace} "
                               f"{pod.name if pod else ''}".rstrip())
    if pod is not None and pod.network_setup_failed:
        raise CheckFailed(f"no pod network on {node}", [ev])
    pytest.skip(ev.title)


def path_ends(probes: ProbeSet, echo: Echo, path: PairId) -> str:
    """The target echo IP of ``path`` once both ends exist."""
    __tracebackhide__ = True
    need_probe(probes, path.source)
    return need_echo(echo, path.target)
