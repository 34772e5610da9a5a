"""The ordered remediation run: bind hooks to ranked causes, plan, budget, apply, verify.

Two passes over the same hooks. :func:`make_plan` plans every hook whose cause is ranked,
against the current state, and changes nothing: that is the plan shown and consented to.
:func:`apply` then walks the stages again; each hook re-plans when its stage comes (an
earlier stage may have changed what it sees) and a plan is applied only when the consented
plan held the same hook on the same node, it is bound to a ranked cause, the node is not a
control-plane node (unless allowed), the change budget covers it, and the hook is not
cooling down. The first failed step stops the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from netdoctor.redact import redact
from netdoctor.repair.model import (
    STAGES,
    EvictionBlocked,
    Plan,
    RemediationHook,
    RepairContext,
    Step,
    Undo,
)
from netdoctor.repair.policy import Decision

# Ranked causes no hook repairs safely: the operator's step, with what to run.
MANUAL_CAUSES: Mapping[str, str] = {
    "vxlan-incomplete": "on {node}: ip -d link show flannel.1; ip route | grep flannel.1; then "
                        "kubectl -n <flannel namespace> delete pod <flannel pod on {node}> "
                        "(its DaemonSet recreates it and flanneld programs the peers again)",
}


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


@dataclass(frozen=True)
class Budget:
    """``--max-changes``: changes allowed per node and in all."""

    per_node: int
    total: int


@dataclass
class Outcome:
    """What a remediation run did: summary.json's ``remediation`` block, minus the scores."""

    mode: str
    reason: str
    steps: list[Step] = field(default_factory=list)
    plan: list[Plan] = field(default_factory=list)
    undos: list[Undo] = field(default_factory=list)
    changes: int = 0
    per_node: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)  # planned work not done when it stopped

    @property
    def failed(self) -> bool:
        """Whether any step failed."""
        return any(s.status == "failed" for s in self.steps)


def bound_cause(hook: RemediationHook, plan: Plan,
                causes: Iterable[tuple[str, str | None]]) -> str | None:
    """The ranked cause (``id@node``) a hook's plan addresses, or None when there is none.

    A cause on a node binds plans on that node (and cluster-wide plans); a cause the
    ranking could not place on one node binds any plan of the hook.

    Example:
        >>> from netdoctor.repair.model import Plan
        >>> class H: causes = frozenset({"ip-forward-off"})
        >>> bound_cause(H(), Plan("h", "w1", ()), [("ip-forward-off", "w2")]) is None
        True
        >>> bound_cause(H(), Plan("h", "w2", ()), [("ip-forward-off", "w2")])
        'ip-forward-off@w2'
    """
    for cause, node in causes:
        if cause in hook.causes and (node is None or plan.node in (None, node)):
            return f"{cause}@{node or '-'}"
    return None


def relevant(hooks: Iterable[RemediationHook], ctx: RepairContext) -> list[RemediationHook]:
    """Hooks one of whose causes is ranked, in stage order."""
    ranked = {cause for cause, _ in ctx.causes}
    chosen = [h for h in hooks if h.causes & ranked]
    return sorted(chosen, key=lambda h: (STAGES.index(h.stage), h.name))


def _bound_plans(hook: RemediationHook, ctx: RepairContext) -> list[Plan]:
    out = []
    for plan in hook.plan(ctx):
        cause = bound_cause(hook, plan, ctx.causes)
        if cause is not None:
            out.append(replace(plan, cause=cause))
    return out


def make_plan(hooks: Iterable[RemediationHook], ctx: RepairContext,
              log: RemediationLog) -> tuple[list[Plan], list[Step]]:
    """The ordered plan against the current state (nothing changes), and the steps that
    could not be planned (a hook that failed to read the state, a cause without a hook)."""
    plans: list[Plan] = []
    problems: list[Step] = []
    chosen = relevant(hooks, ctx)
    for hook in chosen:
        try:
            found = _bound_plans(hook, ctx)
        except Exception as exc:  # reading the state failed: said, never guessed
            problem = f"planning failed: {type(exc).__name__}: {exc}"
            problems.append(Step(hook.name, None, "failed", problem))
            log.write(f"FAILED plan {hook.name}: {problem}")
            continue
        for plan in found:
            for action in plan.actions:
                log.write(f"plan {hook.name} node={plan.node or '-'} cause={plan.cause}: "
                          f"{action.description} [{action.command}]")
            if plan.manual:
                log.write(f"plan {hook.name} node={plan.node or '-'}: manual: {plan.manual}")
        plans += found
    covered = {c for h in chosen for c in h.causes}
    for cause, node in ctx.causes:
        if cause not in covered:
            text = MANUAL_CAUSES.get(cause, "no automatic repair: see the cause's evidence "
                                            "in summary.json")
            plans.append(Plan("manual", node, (), manual=text.format(node=node or "the node"),
                              cause=f"{cause}@{node or '-'}"))
    return plans, problems


def planned_steps(plans: Iterable[Plan]) -> list[Step]:
    """The plan as summary.json steps (``planned``, or ``skipped`` for a manual step)."""
    return [Step(p.hook, p.node, "skipped" if p.manual else "planned", p.detail)
            for p in plans]


@dataclass
class _Run:
    ctx: RepairContext
    budget: Budget
    log: RemediationLog
    consented: frozenset[tuple[str, str | None]]
    cooling: Mapping[str, str]
    outcome: Outcome
    stopped: str = ""

    @property
    def per_node(self) -> dict[str, int]:
        return self.outcome.per_node

    def refusal(self, hook: RemediationHook, plan: Plan) -> str | None:
        # A cluster-wide step re-planned after an earlier stage (a manual restart that the
        # deleted rule made safe) is the same step; a node the plan did not name is not.
        shown = {h for h, _ in self.consented}
        if (hook.name, plan.node) not in self.consented and not (
                plan.node is None and hook.name in shown):
            return "not in the consented plan: run again to plan it"
        if hook.name in self.cooling:
            return self.cooling[hook.name]
        if plan.node in self.ctx.control_plane_nodes() and not self.ctx.allow_control_plane:
            return (f"{plan.node} is a control-plane node: not changed without "
                    "--allow-control-plane")
        return None

    def over_budget(self, plan: Plan) -> str | None:
        total = self.outcome.changes + plan.changes
        if total > self.budget.total:
            return (f"needs {plan.changes} change(s), {self.outcome.changes} of "
                    f"--max-changes {self.budget.total} already made")
        if plan.node is not None:
            on_node = self.per_node.get(plan.node, 0) + plan.changes
            if on_node > self.budget.per_node:
                return (f"needs {plan.changes} change(s) on {plan.node}, "
                        f"{self.per_node.get(plan.node, 0)} of {self.budget.per_node} per node "
                        "already made")
        return None


def apply(hooks: Iterable[RemediationHook], ctx: RepairContext, decision: Decision,
          consented: Iterable[Plan], *, budget: Budget, log: RemediationLog,
          cooling: Mapping[str, str] | None = None,
          on_undo: Callable[[list[Undo]], object] | None = None,
          spent: Outcome | None = None,
          clock: Callable[[], float] = time.monotonic,
          stop: Callable[[], str] | None = None) -> Outcome:
    """Apply the consented plan stage by stage (each hook re-plans when its stage comes).

    ``cooling`` maps hooks that may not run (their cooldown) to why; ``on_undo`` receives
    the undo records after every applied step, so they survive an interrupted run;
    ``spent`` is an earlier round of the same run, whose changes count against the budget.
    ``stop`` says why the run must stop (a deferred Ctrl-C), or ""; it is asked before every
    step, and the steps not run are listed in ``left``. A ``KeyboardInterrupt`` in a step
    (the signal came twice, or the step outlived the grace) marks that step
    ``interrupted`` and ends the run the same way (mode ``interrupted``).
    """
    outcome = Outcome(decision.mode, decision.reason, plan=list(consented),
                      changes=spent.changes if spent else 0,
                      per_node=dict(spent.per_node) if spent else {})
    state = _Run(ctx, budget, log, frozenset((p.hook, p.node) for p in outcome.plan),
                 cooling or {}, outcome)
    log.write(f"remediation mode={decision.mode}: {decision.reason}")
    for hook in relevant(hooks, ctx):
        _interrupted(state, stop and stop())
        if state.stopped:
            outcome.left.append(hook.name)
            outcome.steps.append(Step(hook.name, None, "skipped", f"not run: {state.stopped}"))
            continue
        try:
            plans = _bound_plans(hook, ctx)
        except Exception as exc:  # reading the state failed: later stages must not guess
            problem = f"planning failed: {type(exc).__name__}: {exc}"
            outcome.steps.append(Step(hook.name, None, "failed", problem))
            log.write(f"FAILED {hook.name} node=-: {problem}")
            state.stopped = f"{hook.name} failed"
            continue
        for plan in plans:
            _interrupted(state, stop and stop())
            try:
                _one(hook, plan, state, on_undo, clock)
            except KeyboardInterrupt as exc:
                where = plan.node or "-"
                detail = (f"interrupted ({exc or 'SIGINT'}) while it ran: it may be half "
                          "applied; the next run plans it again from the cluster's state")
                outcome.steps.append(Step(hook.name, plan.node, "interrupted", detail))
                outcome.left.append(f"{hook.name} {where}")
                log.write(f"INTERRUPTED {hook.name} node={where}: {detail}")
                # What the step changed before it was stopped is recorded for rollback too.
                outcome.undos += [replace(u, step=hook.name) for u in ctx.undos]
                ctx.undos.clear()
                if on_undo is not None:
                    on_undo(outcome.undos)
                _interrupted(state, str(exc) or "SIGINT")
    for plan in outcome.plan:
        if plan.hook == "manual":
            outcome.steps.append(Step("manual", plan.node, "skipped", plan.detail))
    return outcome


def _interrupted(state: _Run, signal: str | None) -> None:
    if signal and state.outcome.mode != "interrupted":
        state.stopped = f"interrupted ({signal})"
        state.outcome.mode = "interrupted"
        state.outcome.reason = (f"{signal}: stopped after the step in flight; "
                                "the steps left are listed, the next run finishes them")
        state.log.write(f"remediation interrupted by {signal}")


def _one(hook: RemediationHook, plan: Plan, state: _Run,
         on_undo: Callable[[list[Undo]], object] | None, clock: Callable[[], float]) -> None:
    outcome, log, where = state.outcome, state.log, plan.node or "-"
    if state.stopped:
        outcome.left.append(f"{hook.name} {where}")
        outcome.steps.append(Step(hook.name, plan.node, "skipped", f"not run: {state.stopped}"))
        return
    if plan.manual:
        outcome.steps.append(Step(hook.name, plan.node, "skipped", plan.detail))
        log.write(f"manual {hook.name} node={where}: {plan.detail}")
        return
    refusal = state.refusal(hook, plan)
    if refusal is None and (over := state.over_budget(plan)):
        refusal = f"over budget: {over}"
        state.stopped = f"the change budget stopped the run before {hook.name} on {where}"
        outcome.mode = "over-budget"
        outcome.reason = f"{refusal}; raise --max-changes to go on"
        outcome.left.append(f"{hook.name} {where}")
    if refusal:
        outcome.steps.append(Step(hook.name, plan.node, "skipped", refusal))
        log.write(f"skip {hook.name} node={where}: {refusal}")
        return
    step = _apply(hook, state.ctx, plan, log, clock)
    outcome.steps.append(step)
    outcome.changes += plan.changes
    if plan.node is not None:
        state.per_node[plan.node] = state.per_node.get(plan.node, 0) + plan.changes
    node_undo = [Undo(hook.name, plan.node, "node", plan.node, a.undo, a.description)
                 for a in plan.actions if a.undo and plan.node is not None]
    new = node_undo + [replace(u, step=hook.name) for u in state.ctx.undos]
    state.ctx.undos.clear()
    outcome.undos += new
    if on_undo is not None:
        on_undo(outcome.undos)
    _events(hook, plan, step, new, state.ctx)
    if step.status == "failed":
        state.stopped = f"{hook.name} on {where} failed"
        if "blocked by a PodDisruptionBudget" in step.detail:
            outcome.mode = "blocked"
            outcome.reason = f"{step.detail}; nothing was deleted"


def combine(before: Outcome, done: Outcome, problems: Iterable[Step]) -> Outcome:
    """Two rounds of one run as one outcome (a later round's mode when it stopped)."""
    mode = done.mode if done.mode != "applied" or before.mode == "applied" else before.mode
    reason = done.reason if not before.steps else f"{before.reason}; then {done.reason}"
    return Outcome(mode, reason, [*before.steps, *problems, *done.steps],
                   [*before.plan, *done.plan], [*before.undos, *done.undos],
                   done.changes, dict(done.per_node), [*before.left, *done.left])


def _events(hook: RemediationHook, plan: Plan, step: Step, undos: list[Undo],
            ctx: RepairContext) -> None:
    message = f"{step.status} {hook.name} (cause {plan.cause}): {step.detail}"[:1000]
    targets = {tuple(u.target.split(" ", 1)) for u in undos if u.kind.startswith("api")}
    if plan.node is not None:
        ctx.event("nodes", None, plan.node, message)
    for kind, ref in sorted(targets):
        ns, _, name = ref.rpartition("/")
        ctx.event(kind, ns or None, name, message)


def _apply(hook: RemediationHook, ctx: RepairContext, plan: Plan, log: RemediationLog,
           clock: Callable[[], float]) -> Step:
    start = clock()
    try:
        detail = hook.apply(ctx, plan)
        problem = hook.verify(ctx, plan)
    except EvictionBlocked as exc:
        problem, detail = f"blocked by a PodDisruptionBudget: {exc}", ""
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
