"""Failure-pattern signals and the pure scoring functions.

A signal is *present* when at least one check marked ``@pytest.mark.signal(name)`` failed.
Errors, skips and inconclusive checks raise nothing: they say the check could not look, not that
the network is broken. The score is the number of present signals; the verdict compares it with
two thresholds. A signal that is not present but has a check that could not observe
(``inconclusive``) is *undecided*, and when no check observed anything at all (errors, skips and
inconclusive checks only) every absent signal is. When the undecided signals could change the
verdict it is ``inconclusive`` (exit status :data:`EXIT_INCONCLUSIVE`).

Example:
    >>> from netdoctor.model import CheckResult
    >>> results = [CheckResult("t::a", "failed", (Signal.DNS_TIMEOUTS,)),
    ...            CheckResult("t::b", "error", (Signal.COREDNS_CRASHLOOP,))]
    >>> present = present_signals(results, SIGNALS)
    >>> score(present), verdict(score(present), Thresholds())
    (1, 'none')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from netdoctor.model import CheckResult

Verdict = Literal["confirmed", "partial", "none", "inconclusive", "interrupted"]
VERDICTS: tuple[str, ...] = ("confirmed", "partial", "none", "inconclusive", "interrupted")
"""``interrupted``: SIGINT or SIGTERM stopped the run (exit status 8, see
:mod:`netdoctor.plugin.interrupts`); whatever was measured is reported, nothing is judged."""
EXIT_INCONCLUSIVE = 7
"""Exit status of a run whose verdict is ``inconclusive`` (pytest uses 0-5; 4 also means the
cluster could not be used; 6 is a refused remediation)."""
NOT_OBSERVED: frozenset[str] = frozenset({"error", "inconclusive"})
"""Outcomes of checks that could not look (listed in ``summary.json``'s ``not_observed``)."""
OBSERVING: frozenset[str] = frozenset({"passed", "flaky", "failed"})
"""Outcomes of checks that observed something."""


class Signal(StrEnum):
    """The six built-in signals of the broken-pod-network failure pattern."""

    COREDNS_CRASHLOOP = "coredns_crashloop"
    KUBE_PROXY_RESTARTS = "kube_proxy_restarts"
    FLANNEL_MISSING = "flannel_missing"
    DNS_TIMEOUTS = "dns_timeouts"
    SERVICE_ENDPOINTS_MISSING = "service_endpoints_missing"
    POD_CONNECTIVITY_FAILED = "pod_connectivity_failed"


SIGNALS: tuple[str, ...] = tuple(s.value for s in Signal)


@dataclass(frozen=True)
class SignalDefinition:
    """A signal name and what its presence means (extras come from ``pytest_netdoctor_signals``)."""

    name: str
    description: str


BUILTIN_SIGNALS: tuple[SignalDefinition, ...] = (
    SignalDefinition(Signal.COREDNS_CRASHLOOP, "CoreDNS pods crash-loop or are not ready"),
    SignalDefinition(Signal.KUBE_PROXY_RESTARTS, "kube-proxy restarts repeatedly or is missing"),
    SignalDefinition(Signal.FLANNEL_MISSING, "the Flannel DaemonSet is absent or misses nodes"),
    SignalDefinition(Signal.DNS_TIMEOUTS, "DNS queries from pods time out"),
    SignalDefinition(Signal.SERVICE_ENDPOINTS_MISSING, "Services have no ready endpoints"),
    SignalDefinition(Signal.POD_CONNECTIVITY_FAILED, "pods cannot reach each other"),
)


@dataclass(frozen=True)
class Thresholds:
    """Score thresholds for the verdict (``partial <= confirmed``)."""

    confirmed: int = 4
    partial: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.partial <= self.confirmed:
            raise ValueError(f"need 1 <= partial <= confirmed, got {self}")


def present_signals(
    results: Iterable[CheckResult], names: Sequence[str],
    not_applicable: Mapping[str, str] | None = None,
) -> dict[str, bool | None]:
    """Map every known signal name to whether a failed check raised it.

    A signal named in ``not_applicable`` (name -> reason) maps to ``None``: it cannot occur
    on this cluster (a component absent by design), so it is neither present nor absent.
    """
    raised = {s for r in results if r.raises_signals for s in r.signals}
    skip = not_applicable or {}
    return {name: None if name in skip else name in raised for name in names}


def failures_by_signal(
    results: Iterable[CheckResult], names: Sequence[str]
) -> dict[str, tuple[CheckResult, ...]]:
    """The failed checks behind each signal, in run order (empty tuple when absent)."""
    found: dict[str, list[CheckResult]] = {name: [] for name in names}
    for result in results:
        if result.raises_signals:
            for signal in result.signals:
                if signal in found:
                    found[signal].append(result)
    return {name: tuple(items) for name, items in found.items()}


def undecided_signals(results: Iterable[CheckResult],
                      present: Mapping[str, bool | None]) -> tuple[str, ...]:
    """Applicable signals that are not present although some check of theirs could not observe
    (``inconclusive``); every applicable absent signal when no check observed anything at all.

    An ``error`` is a broken setup and leaves its signal decided, unless nothing was observed.

    Example:
        >>> undecided_signals([CheckResult("t::a", "inconclusive", ("dns_timeouts",)),
        ...                    CheckResult("t::b", "passed", ("flannel_missing",))],
        ...                   {"dns_timeouts": False, "flannel_missing": False})
        ('dns_timeouts',)
    """
    results = list(results)
    absent = [name for name, flag in present.items() if flag is False]
    if not any(r.outcome in OBSERVING for r in results):
        return tuple(absent)
    blind = {s for r in results if r.outcome == "inconclusive" for s in r.signals}
    return tuple(name for name in absent if name in blind)


def decide_verdict(value: int, undecided: int, thresholds: Thresholds) -> Verdict:
    """:func:`verdict`, unless the ``undecided`` signals could change it: then
    ``inconclusive`` (a verdict must not depend on what was never observed).

    Example:
        >>> decide_verdict(0, 1, Thresholds()), decide_verdict(0, 6, Thresholds())
        ('none', 'inconclusive')
        >>> decide_verdict(4, 2, Thresholds())
        'confirmed'
    """
    found = verdict(value, thresholds)
    if undecided and verdict(value + undecided, thresholds) != found:
        return "inconclusive"
    return found


def score(present: Mapping[str, bool | None]) -> int:
    """Number of present signals (not-applicable ones, ``None``, never count)."""
    return sum(1 for flag in present.values() if flag)


def verdict(value: int, thresholds: Thresholds) -> Verdict:
    """``confirmed`` at or above the confirmed threshold, ``partial`` at or above partial."""
    if value >= thresholds.confirmed:
        return "confirmed"
    if value >= thresholds.partial:
        return "partial"
    return "none"


@dataclass(frozen=True)
class Analysis:
    """Everything the reports render: one object, computed once per run."""

    run_id: str
    score: int
    verdict: Verdict
    signals: Mapping[str, bool | None]
    """``True`` present, ``False`` absent, ``None`` not applicable (see ``not_applicable``)."""
    by_signal: Mapping[str, tuple[CheckResult, ...]]
    results: tuple[CheckResult, ...]
    definitions: tuple[SignalDefinition, ...] = ()
    cluster: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Thresholds = Thresholds()
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    """Why each ``None`` signal cannot apply to this cluster."""
    undecided: tuple[str, ...] = ()
    """Applicable signals that could not be decided (see :func:`undecided_signals`)."""

    @property
    def decided(self) -> int:
        """Applicable signals that were decided (present, or absent with every check looking)."""
        return self.applicable - len(self.undecided)

    @property
    def not_observed(self) -> tuple[CheckResult, ...]:
        """Checks that could not look (inconclusive or error), with their reasons."""
        return tuple(r for r in self.results if r.outcome in NOT_OBSERVED)

    @property
    def applicable(self) -> int:
        """How many signals can occur on this cluster (the score's denominator)."""
        return sum(1 for flag in self.signals.values() if flag is not None)

    @property
    def skipped(self) -> tuple[CheckResult, ...]:
        """Checks that were skipped, with their reasons in ``message``."""
        return tuple(r for r in self.results if r.outcome == "skipped")


def analyze(
    results: Sequence[CheckResult],
    definitions: Sequence[SignalDefinition],
    thresholds: Thresholds,
    *,
    run_id: str,
    cluster: Mapping[str, Any] | None = None,
    not_applicable: Mapping[str, str] | None = None,
) -> Analysis:
    """Score ``results`` and build the :class:`Analysis` (the verdict can be overridden later).

    ``not_applicable`` maps signal names that cannot occur on this cluster to the reason.
    """
    names = [d.name for d in definitions]
    skip = {k: v for k, v in (not_applicable or {}).items() if k in names}
    present = present_signals(results, names, skip)
    value = score(present)
    undecided = undecided_signals(results, present)
    return Analysis(
        run_id=run_id,
        score=value,
        verdict=decide_verdict(value, len(undecided), thresholds),
        signals=present,
        by_signal=failures_by_signal(results, names),
        results=tuple(results),
        definitions=tuple(definitions),
        cluster=dict(cluster or {}),
        thresholds=thresholds,
        not_applicable=skip,
        undecided=undecided,
    )
