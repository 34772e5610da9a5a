"""Three outcomes per measurement: observed good, observed bad, not observed.

A command that ran and reported (a ping with no reply, a lookup that timed out by its own
``+time``) is an observation. A command whose result never reached us (the exec or the API
failed, the pod was gone, the exec channel timed out) observed nothing: it is never a failed
check, raises no signal and feeds no root cause.

Example:
    >>> from netdoctor.cluster.exec import Measured
    >>> from netdoctor.model import Attempt
    >>> from netdoctor.probes.parsers import PingResult
    >>> lost = Attempt(("ping", "10.244.1.5"), None, error="no result within 7s")
    >>> classify(Measured(PingResult(conclusive=False), (lost,), "kubectl exec ..."))
    'not_observed'
    >>> classify(Measured(PingResult(conclusive=True, transmitted=1), (), ""))
    'bad'
"""

from __future__ import annotations

from typing import Any, Literal

from netdoctor.cluster.exec import Measured
from netdoctor.model import NotObserved

Observation = Literal["good", "bad", "not_observed"]


def classify(m: Measured[Any]) -> Observation:
    """Which of the three outcomes ``m`` is (its result must have ``conclusive`` and ``ok``)."""
    if not m.result.conclusive:
        return "not_observed"
    return "good" if m.result.ok else "bad"


def unobserved_reason(m: Measured[Any]) -> str:
    """Why ``m`` observed nothing, from its attempts (transport errors first)."""
    errors = [a.error for a in m.attempts if a.transport_error and a.error]
    if errors:
        return f"{len(m.attempts)} attempt(s), no result: {errors[-1]}"
    if not m.attempts:
        return "never run"
    return f"{len(m.attempts)} attempt(s), output not understood"


def require_observed(m: Measured[Any], what: str) -> None:
    """Raise :class:`~netdoctor.model.NotObserved` when ``m`` observed nothing."""
    __tracebackhide__ = True
    if classify(m) == "not_observed":
        raise NotObserved(f"{what}: {unobserved_reason(m)} ({m.command})")
