"""Whether a remediation run may change anything, from the score and the operator."""

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


def decide(verdict: str, policy: Policy, *, tty: bool,
           ask: Callable[[str], bool] | None = None) -> Decision:
    """Apply the rules: ``confirmed`` proceeds, ``partial`` needs ``--force`` or a yes at a
    terminal, ``none`` needs ``--force``; ``--dry-run`` only plans.

    Without a terminal, ``--non-interactive`` must be given, so that a pipeline never
    waits on a prompt nobody sees.
    """
    if policy.dry_run:
        return Decision("dry-run", f"--dry-run: the plan for verdict {verdict}, nothing applied")
    if not tty and not policy.non_interactive:
        return Decision("refused", "no terminal to confirm on: pass --non-interactive "
                                   "(and --force for a partial or no match)")
    if verdict == "confirmed" or policy.force:
        allowed = True
        why = "verdict confirmed" if verdict == "confirmed" else f"verdict {verdict}, --force"
    elif verdict == "partial":
        if tty and not policy.non_interactive and ask is not None:
            allowed = ask("The failure pattern only partly matches. Apply the remediation plan?")
            why = "confirmed at the prompt" if allowed else "declined at the prompt"
        else:
            allowed, why = False, "verdict partial: pass --force to remediate anyway"
    else:
        return Decision("skipped", f"verdict {verdict}: nothing to remediate "
                                   "(pass --force to run the hooks anyway)")
    if not allowed:
        return Decision("refused", why)
    return Decision("applied", why)
