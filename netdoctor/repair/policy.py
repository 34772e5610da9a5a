"""Whether a remediation run may change anything, from the score and the operator.

Two gates: :func:`decide` (before the cluster is contacted) reads the verdict; after the
plan is shown, :func:`consent` asks for a yes at a terminal or takes ``--yes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netdoctor.repair.model import Mode


@dataclass(frozen=True)
class Decision:
    """The mode of this run and why."""

    mode: Mode
    reason: str


@dataclass(frozen=True)
class Policy:
    """What the operator asked for."""

    dry_run: bool = False
    force: bool = False
    non_interactive: bool = False
    yes: bool = False


def decide(verdict: str, policy: Policy, resume: str = "") -> Decision:
    """The verdict gate: ``confirmed`` goes on to planning, ``partial`` and ``none`` need
    ``--force``; ``--dry-run`` only plans. ``applied`` here still needs :func:`consent`.

    ``resume`` names an earlier run whose consented repair was interrupted: a ``partial`` or
    ``none`` verdict (the repaired half no longer shows) then goes on to finish it without
    ``--force`` (the plan is shown and consented to again; it may be empty).

    Example:
        >>> decide("partial", Policy()).reason
        'verdict partial: pass --force to remediate anyway'
        >>> decide("partial", Policy(), resume="abc123").mode
        'applied'
    """
    if policy.dry_run:
        return Decision("dry-run", f"--dry-run: the plan for verdict {verdict}, nothing applied")
    if verdict == "confirmed":
        return Decision("applied", "verdict confirmed")
    if policy.force:
        return Decision("applied", f"verdict {verdict}, --force")
    if verdict in ("partial", "none") and resume:
        return Decision("applied", f"verdict {verdict}: finishing the consented repair of "
                                   f"run {resume}, which was interrupted")
    if verdict == "partial":
        return Decision("refused", "verdict partial: pass --force to remediate anyway")
    return Decision("skipped", f"verdict {verdict}: nothing to remediate "
                               "(pass --force to run the hooks anyway)")


def consent(decision: Decision, policy: Policy, *, tty: bool,
            ask: Callable[[str], bool] | None = None) -> Decision:
    """After the plan was shown: ``--yes``, or a yes typed at a terminal; anything else
    (``--non-interactive``, no terminal, a no) leaves the plan unapplied (``refused``)."""
    if decision.mode != "applied":
        return decision
    if policy.yes:
        return Decision("applied", f"{decision.reason}; --yes")
    if not tty or policy.non_interactive or ask is None:
        how = "--non-interactive" if policy.non_interactive else "no terminal to confirm on"
        return Decision("refused", f"{decision.reason}; {how} without --yes: the plan only, "
                                   "nothing applied (pass --yes to apply it)")
    if ask("Apply the remediation plan above?"):
        return Decision("applied", f"{decision.reason}; confirmed at the prompt")
    return Decision("refused", f"{decision.reason}; declined at the prompt")
