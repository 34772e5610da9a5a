"""Data model shared by checks, the scorer and every report.

Reports never parse log text: the terminal summary, ``report.html``, ``summary.json`` and
``analysis.md`` all render the same :class:`CheckResult` objects, which carry the
:class:`Evidence` a check attached and the :class:`Attempt` records behind it.

Example:
    >>> attempt = Attempt(argv=("ping", "-c", "1", "10.244.1.5"), exit_code=1,
    ...                   stdout="1 packets transmitted, 0 received", duration=1.02)
    >>> ev = Evidence("ping pod-b from pod-a", lines=("100% packet loss",),
    ...               command="kubectl exec -n ns pod-a -- ping -c 1 10.244.1.5",
    ...               attempts=(attempt,))
    >>> ev.attempts[0].succeeded
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from _pytest.outcomes import Skipped

Outcome = Literal["passed", "failed", "skipped", "error", "flaky", "inconclusive"]
"""How one check ended. ``flaky`` is a pass that needed retries; ``error`` is a broken setup;
``inconclusive`` means the check could not observe what it measures (see :class:`NotObserved`)."""

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(frozen=True)
class Attempt:
    """One execution of a probe command.

    Attributes:
        argv: The command as run inside the probe (``("nslookup", "kubernetes.default")``).
        exit_code: The command's exit code, or ``None`` when it never ran to completion
            (exec transport error, timeout of the exec channel).
        stdout: Captured standard output.
        stderr: Captured standard error.
        duration: Wall-clock seconds.
        error: Transport error text when ``exit_code`` is ``None``.
    """

    argv: tuple[str, ...]
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    error: str = ""

    @property
    def transport_error(self) -> bool:
        """True when the command's own result is unknown (worth retrying)."""
        return self.exit_code is None

    @property
    def succeeded(self) -> bool:
        """True when the command ran and exited 0."""
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON and xdist safe)."""
        return {
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": self.duration,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """Inverse of :meth:`to_dict`."""
        return cls(
            argv=tuple(data["argv"]),
            exit_code=data["exit_code"],
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            duration=float(data.get("duration", 0.0)),
            error=data.get("error", ""),
        )


@dataclass(frozen=True)
class Evidence:
    """What a check observed, and how a human can observe it again.

    Attributes:
        title: One line saying what was looked at ("kube-dns endpoints").
        lines: The observation, one fact per line.
        command: A copy-paste command that reproduces the observation
            (``kubectl -n kube-system get endpointslices -l k8s-app=kube-dns``).
        attempts: Probe executions behind the observation, oldest first.
    """

    title: str
    lines: tuple[str, ...] = ()
    command: str = ""
    attempts: tuple[Attempt, ...] = ()

    @property
    def text(self) -> str:
        """The observation as one block of text."""
        return "\n".join(self.lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON and xdist safe)."""
        return {
            "title": self.title,
            "lines": list(self.lines),
            "command": self.command,
            "attempts": [a.to_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        return cls(
            title=data["title"],
            lines=tuple(data.get("lines", ())),
            command=data.get("command", ""),
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts", ())),
        )


def make_evidence(
    title: str,
    lines: str | Iterable[str] = (),
    *,
    command: str = "",
    attempts: Iterable[Attempt] = (),
) -> Evidence:
    """Build :class:`Evidence`, accepting a text block or an iterable of lines.

    Example:
        >>> make_evidence("resolv.conf", "nameserver 10.96.0.10\\nsearch svc").lines
        ('nameserver 10.96.0.10', 'search svc')
    """
    split = tuple(lines.splitlines()) if isinstance(lines, str) else tuple(lines)
    return Evidence(title=title, lines=split, command=command, attempts=tuple(attempts))


class CheckFailed(AssertionError):
    """A check's failure, carrying its evidence.

    Raise it instead of a bare ``assert`` when the failure has something to show.

    Example:
        >>> raise CheckFailed("kube-dns has no ready endpoints",
        ...                   evidence=[Evidence("endpoints", ("<none>",))])
        Traceback (most recent call last):
        ...
        netdoctor.model.CheckFailed: kube-dns has no ready endpoints
    """

    def __init__(self, message: str, evidence: Sequence[Evidence] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.evidence: tuple[Evidence, ...] = tuple(evidence)


class NotObserved(Skipped):
    """A check could not observe what it measures: the exec or API call failed, the pod was
    gone, the transport timed out (not the probe's own timeout).

    Not a failure: the check ends ``inconclusive`` with ``reason``, raises no signal and
    feeds no root cause. It travels as a pytest skip, so pytest never counts it as failed.

    Example:
        >>> raise NotObserved("ping w1->w2: exec failed 3 times (no answer from the API)")
        Traceback (most recent call last):
        ...
        netdoctor.model.NotObserved: ping w1->w2: exec failed 3 times (no answer from the API)
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, _use_item_location=True)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Place:
    """Where in the cluster a check looked, read from its parametrization.

    Attributes:
        kind: What was measured, the check's name without ``test_`` plus its other
            parameters (``pod_to_pod``, ``dns[replica]``).
        title: The check's one-line description (first docstring line).
        source: The node the check ran from (or about).
        target: The node it reached, for node-to-node paths; ``""`` for a per-node check.
    """

    kind: str
    title: str
    source: str
    target: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain-data form (JSON and xdist safe)."""
        return {"kind": self.kind, "title": self.title, "source": self.source,
                "target": self.target}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Place:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["kind"]), str(data.get("title", "")), str(data["source"]),
                   str(data.get("target", "")))


@dataclass(frozen=True)
class CheckResult:
    """The end state of one check (one pytest item), as every report sees it.

    Attributes:
        nodeid: The pytest node id.
        outcome: See :data:`Outcome`.
        signals: Failure-pattern signals the check raises when it fails.
        duration: Seconds over setup, call and teardown.
        message: Failure message, or the skip reason for skipped checks.
        evidence: What the check attached, in order.
        flaky_reason: Why a passing check counts as flaky (empty otherwise).
        place: The node (or node pair) the check is about, when it is parametrized by one.
    """

    nodeid: str
    outcome: Outcome
    signals: tuple[str, ...] = ()
    duration: float = 0.0
    message: str = ""
    evidence: tuple[Evidence, ...] = field(default=())
    flaky_reason: str = ""
    place: Place | None = None

    @property
    def raises_signals(self) -> bool:
        """Only real failures raise signals: errors and skips say nothing about the network."""
        return self.outcome == "failed"


class ProbeNotStarted(Exception):
    """Not observed because a probe pod could not start for a reason outside the pod network
    (its image cannot be pulled): the other form of :class:`NotObserved`.

    Reported the same way (``not observed: <reason>`` in ``summary.json``'s ``not_observed``,
    no signal, no root cause), but raised in setup it ends the check as an *error*: the
    run's setup is broken, and the exit status says so (docs/access.md).

    Example:
        >>> str(ProbeNotStarted("image problem on w1: ErrImagePull"))
        'image problem on w1: ErrImagePull'
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


UNOBSERVED: tuple[type[BaseException], ...] = (NotObserved, ProbeNotStarted)
"""The exceptions that say a check observed nothing (each carries ``reason``)."""
