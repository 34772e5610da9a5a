"""From pytest reports to :class:`~netdoctor.model.CheckResult`: evidence, signals, flakiness.

Checks attach evidence through the ``evidence`` fixture or by raising
:class:`~netdoctor.model.CheckFailed`. At each phase the plugin copies the new evidence, the
item's signals and its flaky mark onto the report as plain data (``report.netdoctor``), so the
same data also travels from xdist workers; on the controller the phases are folded into one
``CheckResult`` per test.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from netdoctor.model import (
    UNOBSERVED,
    Attempt,
    CheckFailed,
    CheckResult,
    Evidence,
    NotObserved,
    Outcome,
    Place,
    make_evidence,
)
from netdoctor.plugin import markers
from netdoctor.plugin.state import get_state

REPORT_ATTR = "netdoctor"


class EvidenceRecorder:
    """Collects a check's evidence; available to checks as the ``evidence`` fixture.

    Example:
        >>> rec = EvidenceRecorder()
        >>> _ = rec.add("kube-dns endpoints", "<none>",
        ...             command="kubectl -n kube-system get endpoints kube-dns")
        >>> rec.mark_flaky("answered on attempt 3 of 3")
        >>> len(rec.items), rec.flaky_reason
        (1, 'answered on attempt 3 of 3')
    """

    def __init__(self) -> None:
        self.items: list[Evidence] = []
        self.flaky_reason = ""
        self._reported = 0

    def add(
        self,
        title: str,
        *lines: str,
        command: str = "",
        attempts: Iterable[Attempt] = (),
    ) -> Evidence:
        """Attach one piece of evidence; each line argument may hold several lines.

        Args:
            title: What was looked at.
            *lines: The observation.
            command: Copy-paste command that reproduces it (``kubectl ...``).
            attempts: Probe executions behind it.
        """
        text = "\n".join(lines)
        item = make_evidence(title, text, command=command, attempts=attempts)
        self.items.append(item)
        return item

    def extend(self, items: Iterable[Evidence]) -> None:
        """Attach several ready-made :class:`Evidence` objects."""
        self.items.extend(items)

    def mark_flaky(self, reason: str) -> None:
        """Declare that the check passed only after retries; its outcome becomes ``flaky``."""
        self.flaky_reason = reason or "passed after retries"

    def take_new(self) -> list[Evidence]:
        """Evidence added since the last call (each piece is reported once)."""
        new = self.items[self._reported:]
        self._reported = len(self.items)
        return new


RECORDER = pytest.StashKey[EvidenceRecorder]()


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> EvidenceRecorder:
    """The current check's :class:`EvidenceRecorder`."""
    node: pytest.Item = request.node
    return node.stash.setdefault(RECORDER, EvidenceRecorder())


def _message(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.passed:
        return ""
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, CheckFailed):
        return exc.message
    if isinstance(exc, UNOBSERVED):
        return f"not observed: {getattr(exc, 'reason', exc)}"
    if report.skipped:
        wasxfail = getattr(report, "wasxfail", None)
        if wasxfail is not None:
            return f"xfail: {wasxfail}" if wasxfail else "xfail"
        if isinstance(report.longrepr, tuple):
            return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return call.excinfo.exconly() if call.excinfo else str(report.longrepr)


NODE_PARAM = "node"
"""The parameter name of per-node checks (a node pair is any value with ``source`` and
``target``, such as :class:`netdoctor.probes.network.PairId`)."""


def place_of(item: pytest.Item) -> Place | None:
    """Where ``item`` looks: its node pair or node parameter, the other parameters naming the
    kind (``dns[replica]``); ``None`` for checks not parametrized by nodes.

    Example:
        ``test_pod_ping[worker-1->worker-2]`` -> ``Place("pod_ping", ..., "worker-1", "worker-2")``
    """
    params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    source = target = ""
    rest: list[str] = []
    for name, value in params.items():
        if isinstance(getattr(value, "source", None), str) and \
                isinstance(getattr(value, "target", None), str):
            source, target = value.source, value.target
        elif name == NODE_PARAM and isinstance(value, str):
            source = value
        elif isinstance(value, str | int | float | bool):
            rest.append(str(value))
    if not source:
        return None
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    kind = name + (f"[{'-'.join(rest)}]" if rest else "")
    doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
    return Place(kind, doc.splitlines()[0] if doc else "", source, target)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Copy signals, new evidence, message and flaky mark onto the report as plain data."""
    report = yield
    recorder = item.stash.get(RECORDER, None)
    found = recorder.take_new() if recorder else []
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, CheckFailed):
        found.extend(exc.evidence)
    setattr(report, REPORT_ATTR, {
        "signals": list(markers.item_signals(item)),
        "evidence": [e.to_dict() for e in found],
        "message": _message(report, call),
        "flaky": recorder.flaky_reason if recorder and call.when == "call" else "",
        "place": place.to_dict() if (place := place_of(item)) else None,
        "inconclusive": isinstance(exc, NotObserved),
    })
    return report


def report_data(report: pytest.TestReport) -> dict[str, Any]:
    """The plain data :func:`pytest_runtest_makereport` stored (empty for foreign reports)."""
    data = getattr(report, REPORT_ATTR, None)
    return data if isinstance(data, dict) else {}


def report_evidence(report: pytest.TestReport) -> list[Evidence]:
    """The evidence attached to one phase's report."""
    return [Evidence.from_dict(d) for d in report_data(report).get("evidence", ())]


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """Show checks that passed only after retries as ``FLAKY`` (still a pass for pytest), and
    checks that could not observe as ``INCONCLUSIVE`` (never a failure)."""
    if report.when == "call" and report.passed and report_data(report).get("flaky"):
        return "flaky", "~", ("FLAKY", {"yellow": True})
    if report.skipped and report_data(report).get("inconclusive"):
        return "inconclusive", "?", ("INCONCLUSIVE", {"yellow": True})
    return None


@dataclass
class _Pending:
    outcome: Outcome = "passed"
    duration: float = 0.0
    message: str = ""
    signals: tuple[str, ...] = ()
    evidence: list[Evidence] = field(default_factory=list)
    flaky: str = ""
    place: Place | None = None


_RANK: dict[Outcome, int] = {"passed": 0, "flaky": 1, "skipped": 2, "inconclusive": 3,
                             "error": 4, "failed": 5}


def fold(pending: _Pending, report: pytest.TestReport) -> None:
    """Merge one phase's report into the pending result of its test."""
    data = report_data(report)
    pending.duration += report.duration
    pending.signals = tuple(data.get("signals", pending.signals))
    pending.evidence.extend(report_evidence(report))
    pending.flaky = pending.flaky or data.get("flaky", "")
    if data.get("place"):
        pending.place = Place.from_dict(data["place"])
    phase: Outcome = "passed"
    if report.failed:
        phase = "failed" if report.when == "call" else "error"
    elif report.skipped:
        phase = "inconclusive" if data.get("inconclusive") else "skipped"
    elif report.when == "call" and pending.flaky:
        phase = "flaky"
    if _RANK[phase] > _RANK[pending.outcome]:
        pending.outcome = phase
        pending.message = data.get("message", "")


class ResultCollector:
    """Controller-side: folds setup/call/teardown reports into one result per test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._pending: dict[str, _Pending] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold each phase; publish the result when teardown is reported."""
        pending = self._pending.setdefault(report.nodeid, _Pending())
        fold(pending, report)
        if report.when != "teardown":
            return
        del self._pending[report.nodeid]
        get_state(self.config).results[report.nodeid] = CheckResult(
            nodeid=report.nodeid,
            outcome=pending.outcome,
            signals=pending.signals,
            duration=pending.duration,
            message=pending.message,
            evidence=tuple(pending.evidence),
            flaky_reason=pending.flaky if pending.outcome == "flaky" else "",
            place=pending.place,
        )
