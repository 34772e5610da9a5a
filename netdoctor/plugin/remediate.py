"""``pytest --remediate``: after the checks ran, repair what they found, then prove it.

Registered (as an object, on the controller only) when ``--remediate`` is given. The engine
calls :meth:`Remediation.remediate` after scoring and ranking, before the summary hook and
the reports (``netdoctor.plugin.pytest_sessionfinish``): the verdict goes
through the policy; when allowed, the hooks of ``remediation/`` plan from the cluster's real
state and the runner applies them in stage order; the failing checks then run again in a
subprocess without ``--remediate``, whose score is ``score_after``. Every action is logged
to ``<report-dir>/remediation.log``.

Exit status: 0 when ``score_after`` is 0 and no re-run check still fails (or nothing was
failing), :data:`EXIT_REFUSED` when the policy refused (or another repair holds the
remediation Lease), 1 when a step failed or anything remains, and
:data:`~netdoctor.plugin.interrupts.EXIT_INTERRUPTED` when SIGINT or SIGTERM stopped it: a
repair step in flight finishes first, the steps done and left are reported, and the next
run finishes the consented repair without ``--force`` (:mod:`netdoctor.repair.pending`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from netdoctor.cluster.client import Target, server_url
from netdoctor.cluster.leases import (
    LEASE_NAMESPACE,
    REMEDIATION_LEASE,
    Heartbeat,
    release_now,
)
from netdoctor.plugin.activation import get_activation
from netdoctor.plugin.interrupts import Deferred
from netdoctor.plugin.options import Settings
from netdoctor.plugin.repairresult import EXIT_REFUSED, Result, summary_lines
from netdoctor.plugin.state import get_state
from netdoctor.plugin.verify import (
    Verification,
    child_env,
    child_run_id,
    failing_functions,
    remove_run,
    run_verification,
    verification_argv,
)
from netdoctor.repair.live import LiveContext, LiveOptions
from netdoctor.repair.model import Plan, Undo
from netdoctor.repair.pending import PENDING_NAME, PendingRepair
from netdoctor.repair.planfile import plan_json, plan_lines, write_plan
from netdoctor.repair.policy import Decision, Policy, consent, decide
from netdoctor.repair.runner import (
    Budget,
    Outcome,
    RemediationLog,
    apply,
    combine,
    make_plan,
    planned_steps,
)
from netdoctor.repair.undo import COOLDOWN_NAME, Cooldown, write_undo

__all__ = ["EXIT_REFUSED", "Remediation", "Result", "failing_functions", "summary_lines",
           "verification_argv"]

LOG_NAME = "remediation.log"
# A repair can uncover a cause the cascade hid (CoreDNS that reaches the API again shows
# its upstream timing out): the verification's ranking is planned once more, as a new plan.
ROUNDS = 2
class Remediation:
    """The ``--remediate`` plugin object (one per run, on the controller)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.result: Result | None = None
        self.context: LiveContext | None = None
        self.checks_finished = False
        self.phase = "starting"
        """What the run was doing (said when a signal interrupts it)."""
        self.plans: list[Plan] = []
        """The plan in hand, not yet applied (left when a signal interrupts the run)."""
        self.lease: Heartbeat | None = None
        """Renews the remediation Lease while this run may repair."""

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Remember whether the checks ran to the end; set the exit status afterwards."""
        status = int(session.exitstatus)
        self.checks_finished = status in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        yield
        if self.result is not None:
            session.exitstatus = self.result.exit_status(status)

    def remediate(self, summary: dict[str, Any]) -> None:
        """Run the remediation and add its block to summary.json (called by the engine once
        the causes are ranked into ``summary``, before the summary hook and the reports; also
        when interrupted: the steps done and left, mode ``interrupted``)."""
        try:
            self.result = self._remediate(summary)
        except KeyboardInterrupt as exc:
            self._stopped(get_state(self.config).interrupted or str(exc) or "SIGINT")
        finally:
            with Deferred():  # cleanup is bounded; a second signal still interrupts it
                self._close()
                self._release()
        assert self.result is not None
        summary["remediation"] = self.result.to_json()

    def _stopped(self, why: str) -> None:
        """A KeyboardInterrupt outside the repair steps (planning, the prompt, just after):
        nothing of the plan in hand was applied."""
        result = self.result
        assert result is not None
        outcome = result.outcome
        if outcome.mode != "interrupted":
            outcome.mode = "interrupted"
            outcome.reason = f"{why} while {self.phase}: {_UNTOUCHED.get(self.phase, '')}"
            outcome.steps += planned_steps(self.plans)
            outcome.left += [f"{p.hook} {p.node or '-'}" for p in self.plans if not p.manual]
            if result.log_path is not None:
                RemediationLog(result.log_path).write(f"remediation interrupted by {why} "
                                                      f"while {self.phase}")
        state = get_state(self.config)
        state.interrupted = state.interrupted or why

    def _remediate(self, summary: dict[str, Any]) -> Result:
        state = get_state(self.config)
        settings, analysis = state.settings, state.analysis
        assert analysis is not None
        assert state.report_paths is not None
        directory = state.report_paths.directory
        log = RemediationLog(directory / LOG_NAME)
        self.result = result = Result(Outcome("skipped", ""), analysis.score, log_path=log.path,
                                      log_lines=log.lines, run_id=state.run_id)
        if state.interrupted:
            result.outcome = _without_cluster(Decision(
                "interrupted", f"{state.interrupted} before the checks ended: nothing was "
                               "planned or changed"), log)
            return result
        if not self.checks_finished:
            result.outcome = _without_cluster(Decision(
                "skipped", "the checks did not run to the end: nothing is repaired"), log)
            return result
        if analysis.verdict == "inconclusive":  # never repair what was not observed, --force or not
            result.outcome = _without_cluster(Decision("refused", "verdict inconclusive"), log)
            return result
        pending = PendingRepair(settings.report_dir / PENDING_NAME,
                                server_url(Target(settings.kubeconfig, settings.context)))
        earlier = pending.find()
        policy = Policy(settings.dry_run, settings.force, settings.non_interactive, settings.yes)
        decision = decide(analysis.verdict, policy, str(earlier["run_id"]) if earlier else "")
        if decision.mode in ("refused", "skipped"):
            result.outcome = _without_cluster(decision, log)
            return result
        from netdoctor.suite.remediation import DEFAULT_FLANNEL_MANIFEST, HookOptions, default_hooks

        signals = frozenset(n for n, present in analysis.signals.items() if present)
        self.phase = "connecting to plan"
        ranked = _causes(summary.get("root_causes"))
        carried = tuple(c for c in pending.causes() if c not in ranked) if earlier else ()
        if carried:
            log.write(f"finishing run {earlier and earlier['run_id']}: its causes "
                      f"{', '.join(f'{c}@{n or chr(45)}' for c, n in carried)} are planned too")
        self.context = ctx = LiveContext(LiveOptions(
            settings.kubeconfig, settings.context, state.run_id, settings.node_probe_image,
            settings.allow_control_plane, settings.setup_timeout, settings.api_qps,
            settings.api_burst), signals,
            ranked + carried, log)
        try:
            ctx.connect()
        except Exception as exc:  # no plan without the cluster's state: said, not guessed
            result.outcome = _without_cluster(Decision(
                "skipped", f"could not read the cluster to plan the repair: "
                           f"{type(exc).__name__}: {exc}"), log)
            return result
        if decision.mode == "applied":
            holder = ctx.acquire_lease()
            if not holder:
                self.lease = Heartbeat(Target(settings.kubeconfig, settings.context),
                                       state.run_id)
                self.lease.hold(REMEDIATION_LEASE, "remediation")
                log.write(f"holding Lease {LEASE_NAMESPACE}/{REMEDIATION_LEASE}")
            else:
                result.outcome = _without_cluster(Decision("refused", (
                    f"another repair is running (Lease {LEASE_NAMESPACE}/{REMEDIATION_LEASE} "
                    f"held by {holder}): two repairs never overlap; run again when it has "
                    "ended")), log)
                return result
        hooks = default_hooks(HookOptions(
            run_id=state.run_id, flannel_manifest=settings.flannel_manifest
            or DEFAULT_FLANNEL_MANIFEST, dns_fallback=settings.dns_fallback,
            external_name=settings.external_name, fix_selectors=settings.fix_selectors,
            cni=(ctx.profile.cni if ctx.profile and ctx.profile.cni != "unknown" else "flannel")))
        self.config.hook.pytest_netdoctor_remediation_hooks(config=self.config, hooks=hooks)
        stages = {h.name: h.stage for h in hooks.values()}
        result.budget = Budget(settings.max_changes_per_node, settings.max_changes)
        cooldown = Cooldown(settings.report_dir / COOLDOWN_NAME,
                            ctx.cluster.server if ctx.cluster else "")
        outcome = result.outcome = Outcome(decision.mode, decision.reason)
        for round_no in range(1, ROUNDS + 1):
            self.phase, self.plans = "planning", []
            plans, problems = make_plan(list(hooks.values()), ctx, log)
            self.plans = plans
            name = "" if round_no == 1 else f"-{round_no}"
            header = (f"run {state.run_id}, round {round_no}, verdict {analysis.verdict}; "
                      f"budget {settings.max_changes} change(s), "
                      f"{settings.max_changes_per_node} per node")
            files = write_plan(directory, plans, stages, header, name)
            result.plan += plan_json(plans, stages)
            result.plan_files += [str(f) for f in files]
            self._show(header, plans, stages)
            self.phase = "asking for consent"
            if _actionable(plans):
                decided = consent(decision, policy, tty=sys.stdin.isatty(), ask=self._ask)
            elif round_no > 1:
                outcome.steps += problems + planned_steps(plans)
                break
            else:  # nothing to change: nothing to consent to, the checks still run again
                decided = decision
            log.write(f"remediation mode={decided.mode}: {decided.reason}")
            if decided.mode != "applied":
                outcome.steps += problems + planned_steps(plans)
                if round_no == 1:
                    outcome.mode, outcome.reason = decided.mode, decided.reason
                break
            self.phase = "starting the repair"
            cooling = {} if settings.retry_failed else cooldown.cooling()
            before = list(outcome.undos)

            def keep(undos: list[Undo], before: list[Undo] = before) -> None:
                write_undo(directory, state.run_id, before + undos)
            with Deferred() as deferred:  # a step in flight finishes; the run stops after it
                done = apply(list(hooks.values()), ctx, decided, plans, budget=result.budget,
                             log=log, cooling=cooling, on_undo=keep, spent=outcome,
                             stop=_asker(deferred))
                outcome = result.outcome = combine(outcome, done, problems)
                self.plans = []
                result.undo_path = write_undo(directory, state.run_id, outcome.undos)
                cooldown.record({s.name for s in done.steps if s.status == "failed"},
                                {s.name for s in done.steps if s.status == "applied"})
                if done.mode == "interrupted" or deferred.requested:
                    if done.mode != "interrupted":  # the signal came during the last step
                        outcome.mode = "interrupted"
                        outcome.reason = (f"{deferred.requested}: stopped after the last step; "
                                          "not verified, the next run checks it again")
                    pending.record(state.run_id, outcome.left, result.undo_path, ctx.causes)
                    state.interrupted = deferred.requested or "SIGINT"
                    break
                # kept until verified: an interrupted verification is finished by the next run
                pending.record(state.run_id, [], result.undo_path, ctx.causes)
                self._close()  # node pods go before the checks run again
            self.phase = "verifying"
            check = self._verify(settings, analysis.results, directory / f"verify{name}", log,
                                 round_no)
            result.score_after, result.verification, result.still_failing = (
                check.score, check.description, check.still_failing)
            if check.interrupted:
                outcome.mode = "interrupted"
                outcome.reason = (f"{check.interrupted} during the verification run: the steps "
                                  "above were applied; the next run checks them again")
                state.interrupted = state.interrupted or check.interrupted
                break
            pending.clear()
            applied = any(s.status == "applied" for s in done.steps)
            if done.mode != "applied" or done.failed or not applied or result.score_after == 0:
                break
            ctx = self._reopen(ctx, _causes(check.summary.get("root_causes")), log)
        return result

    def _reopen(self, old: LiveContext, causes: tuple[tuple[str, str | None], ...],
                log: RemediationLog) -> LiveContext:
        """A fresh context for the next round, bound to the verification's ranking."""
        self.context = ctx = LiveContext(old.options, old.signals, causes, log)
        ctx.connect()
        return ctx

    def _show(self, header: str, plans: Sequence[Plan], stages: dict[str, str]) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        reporter.write_sep("=", "netdoctor remediation plan")
        reporter.write_line(header)
        for line in plan_lines(plans, stages) or ["nothing to change"]:
            reporter.write_line(line)

    def _verify(self, settings: Settings, results: Sequence[Any], report_dir: Path,
                log: RemediationLog, round_no: int) -> Verification:
        """Run the failing checks again, as a run of their own."""
        nodeids = failing_functions(results)
        if not nodeids:
            return Verification(0, "no check had failed")
        run_id = child_run_id(get_state(self.config).run_id, round_no)
        argv = verification_argv(settings, nodeids, report_dir, self.config.inipath)
        found = run_verification(argv, child_env(run_id), get_activation(self.config).node_root
                                 or self.config.rootpath, report_dir / "summary.json", log)
        if found.interrupted:
            for problem in remove_run(settings.kubeconfig, settings.context, run_id):
                log.write(f"verify: cleanup of run {run_id}: {problem}")
        found.description = f"{len(nodeids)} check function(s) again, {found.description}"
        return found

    def _ask(self, question: str) -> bool:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            capman.suspend_global_capture(in_=True)
        try:
            return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
        except EOFError:
            return False
        finally:
            if capman is not None:
                capman.resume_global_capture()

    def _close(self) -> None:
        if self.context is not None:
            for problem in self.context.close():
                reporter = self.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(f"netdoctor: cleanup: {problem}", yellow=True)

    def _release(self) -> None:
        if self.lease is not None:
            self.lease.stop()
            problem = release_now(self.lease.target, REMEDIATION_LEASE)
            if problem and self.result is not None and self.result.log_path is not None:
                RemediationLog(self.result.log_path).write(problem)
            self.lease = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """After an interrupt: remove the node pods if the summary hook could not."""
        self._close()
        self._release()

    @pytest.hookimpl(trylast=True)  # after the root causes and matrices it acted on
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Mode, before/after and every step."""
        if self.result is None:
            return
        terminalreporter.write_sep("=", "netdoctor remediation")
        for line in summary_lines(self.result):
            terminalreporter.write_line(line)


def _causes(ranked: Any) -> tuple[tuple[str, str | None], ...]:
    """(id, node) of summary.json's ``root_causes``."""
    return tuple((str(c.get("id")), c.get("node")) for c in ranked or [] if isinstance(c, dict))


def _actionable(plans: Sequence[Plan]) -> bool:
    return any(not p.manual for p in plans)


def _asker(deferred: Deferred) -> Callable[[], str]:
    return lambda: deferred.requested


_UNTOUCHED = {
    "connecting to plan": "nothing was planned or changed",
    "planning": "nothing was changed (planning only reads)",
    "asking for consent": "nothing was changed (the plan was not applied)",
    "starting the repair": "nothing was changed",
    "verifying": "the steps above were applied; the verification did not finish",
}


def _without_cluster(decision: Decision, log: RemediationLog) -> Outcome:
    """A refused or skipped run: said and logged, the cluster never contacted."""
    log.write(f"remediation mode={decision.mode}: {decision.reason}")
    return Outcome(decision.mode, decision.reason)
