"""The ordered remediation run: choose hooks, plan, cap, apply, verify, log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from netdoctor.redact import redact
from netdoctor.repair.model import STAGES, Plan, RemediationHook, RepairContext, Step
from netdoctor.repair.policy import Decision


class RemediationLog:
    """Every action, with a timestamp, appended to ``<report-dir>/remediation.log``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = []

    def write(self, message: str) -> None:
        """Record one line (and append it to the file, when there is one)."""
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} {redact(message)}"
        self.lines.append(line)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(line + "\n")


@dataclass
class Outcome:
    """What a remediation run did: summary.json's ``remediation`` block, minus the scores."""

    mode: str
    reason: str
    steps: list[Step] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether any step failed."""
        return any(s.status == "failed" for s in self.steps)


def relevant(hooks: Iterable[RemediationHook], ctx: RepairContext) -> list[RemediationHook]:
    """Hooks that address a present signal or ranked cause, in stage order."""
    present = set(ctx.signals) | {cause for cause, _ in ctx.causes}
    chosen = [h for h in hooks if h.addresses & present]
    return sorted(chosen, key=lambda h: (STAGES.index(h.stage), h.name))


def _allowed_node(plan: Plan, ctx: RepairContext) -> str | None:
    on_control_plane = plan.node in ctx.control_plane_nodes() and not ctx.allow_control_plane
    touches_runtime = any("containerd" in a.command or "kubelet" in a.command
                          for a in plan.actions)
    if on_control_plane and touches_runtime:
        return ("the control-plane node's runtime and kubelet are left alone "
                "(--allow-control-plane to permit)")
    return None


def run(hooks: Iterable[RemediationHook], ctx: RepairContext, decision: Decision, *,
        max_disruptive: int, log: RemediationLog,
        clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Plan every relevant hook; apply in order when the decision allows it.

    A failed step (apply raised, or its post-condition does not hold) stops every
    later step, which is reported as skipped with the name of the step that failed.
    """
    outcome = Outcome(decision.mode, decision.reason)
    log.write(f"remediation mode={decision.mode}: {decision.reason}")
    if decision.mode in ("refused", "skipped"):
        return outcome
    disruptive, stopped_by = 0, ""
    for hook in relevant(hooks, ctx):
        if stopped_by:
            # Later stages build on earlier ones: planning them on a half-repaired node
            # would act on a state nobody intended.
            outcome.steps.append(Step(hook.name, None, "skipped",
                                      f"not run: {stopped_by} failed earlier"))
            continue
        try:
            plans = hook.plan(ctx)
        except Exception as exc:  # reading the state failed: later stages must not guess
            problem = f"planning failed: {type(exc).__name__}: {exc}"
            outcome.steps.append(Step(hook.name, None, "failed", problem))
            log.write(f"FAILED {hook.name} node=-: {problem}")
            stopped_by = hook.name
            continue
        for plan in plans:
            for action in plan.actions:
                log.write(f"plan {hook.name} node={plan.node or '-'}: {action.description} "
                          f"[{action.command}]")
            detail = plan.detail
            if plan.manual:
                outcome.steps.append(Step(hook.name, plan.node, "skipped", detail))
                log.write(f"manual {hook.name} node={plan.node or '-'}: {detail}")
                continue
            if decision.mode == "dry-run":
                outcome.steps.append(Step(hook.name, plan.node, "planned", detail))
                continue
            refusal = _allowed_node(plan, ctx)
            if stopped_by:
                refusal = f"not run: {stopped_by} failed earlier"
            elif plan.disruptive and disruptive >= max_disruptive:
                refusal = f"cap of {max_disruptive} disruptive action(s) reached"
            if refusal:
                outcome.steps.append(Step(hook.name, plan.node, "skipped", refusal))
                log.write(f"skip {hook.name} node={plan.node or '-'}: {refusal}")
                continue
            step = _apply(hook, ctx, plan, log, clock)
            outcome.steps.append(step)
            disruptive += plan.disruptive
            if step.status == "failed":
                stopped_by = f"{hook.name}" + (f" on {plan.node}" if plan.node else "")
    return outcome


def _apply(hook: RemediationHook, ctx: RepairContext, plan: Plan, log: RemediationLog,
           clock: Callable[[], float]) -> Step:
    start = clock()
    try:
        detail = hook.apply(ctx, plan)
        problem = hook.verify(ctx, plan)
    except Exception as exc:  # a hook failure is a step result, never a crash of the run
        problem, detail = f"{type(exc).__name__}: {exc}", ""
    elapsed = clock() - start
    if problem is None and elapsed > hook.deadline:
        problem = f"took {elapsed:.1f}s, over its {hook.deadline:.0f}s deadline"
    if problem is not None:
        log.write(f"FAILED {hook.name} node={plan.node or '-'}: {problem}")
        backups = f" (backups: {', '.join(plan.backups)})" if plan.backups else ""
        return Step(hook.name, plan.node, "failed", f"{problem}{backups}")
    if plan.backups:
        detail = f"{detail} (backups: {', '.join(plan.backups)})"
    log.write(f"applied {hook.name} node={plan.node or '-'}: {detail}")
    return Step(hook.name, plan.node, "applied", detail)
