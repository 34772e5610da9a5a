"""``pytest --remediate``: after the checks ran, repair what they found, then prove it.

Registered (as an object, on the controller only) when ``--remediate`` is given. The engine
calls :meth:`Remediation.remediate` after scoring and ranking, before the summary hook and
the reports (``netdoctor.plugin.pytest_sessionfinish``): the verdict goes
through the policy; when allowed, the hooks of ``remediation/`` plan from the cluster's real
state and the runner applies them in stage order; the failing checks then run again in a
subprocess without ``--remediate``, whose score is ``score_after``. Every action is logged
to ``<report-dir>/remediation.log``.

Exit status: 0 when ``score_after`` is 0 and no re-run check still fails (or nothing was
failing), :data:`EXIT_REFUSED` when the policy refused, 1 when a step failed or anything
remains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netdoctor.plugin.activation import get_activation
from netdoctor.plugin.options import OPTIONS, Settings
from netdoctor.plugin.state import get_state
from netdoctor.redact import redact
from netdoctor.repair.live import LiveContext, LiveOptions
from netdoctor.repair.model import Plan, Undo
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

EXIT_REFUSED = 6
LOG_NAME = "remediation.log"
VERIFY_TIMEOUT = 600.0
# A repair can uncover a cause the cascade hid (CoreDNS that reaches the API again shows
# its upstream timing out): the verification's ranking is planned once more, as a new plan.
ROUNDS = 2
# Options that steer remediation or the reports; everything else is passed on to the
# verification run so that it looks at the same cluster the same way.
_NOT_PASSED = {"lab", "report_dir", "overwrite_report", "cleanup_only", "remediate", "dry_run",
               "force", "non_interactive", "yes", "max_changes", "max_changes_per_node",
               "allow_control_plane", "fix_selectors", "retry_failed", "flannel_manifest",
               "dns_fallback"}


@dataclass
class Result:
    """summary.json's ``remediation`` block, plus what the terminal and exit status need."""

    outcome: Outcome
    score_before: int
    score_after: int | None = None
    verification: str = ""
    still_failing: list[str] = field(default_factory=list)
    log_path: Path | None = None
    log_lines: list[str] = field(default_factory=list)
    run_id: str = ""
    plan: list[dict[str, Any]] = field(default_factory=list)
    plan_files: list[str] = field(default_factory=list)
    undo_path: Path | None = None
    budget: Budget | None = None

    def to_json(self) -> dict[str, Any]:
        """As summary.json stores it (``still_failing`` only after a verification run;
        the keys after ``score_after`` are documented in docs/summary-json.md)."""
        block: dict[str, Any] = {
            "mode": self.outcome.mode, "reason": self.outcome.reason,
            "steps": [s.to_json() for s in self.outcome.steps],
            "score_before": self.score_before, "score_after": self.score_after}
        if self.verification:
            block["still_failing"] = list(self.still_failing)
        block.update({"run_id": self.run_id, "plan": self.plan, "plan_files": self.plan_files,
                      "changes": self.outcome.changes, "left": list(self.outcome.left)})
        if self.budget is not None:
            block["budget"] = {"max_changes": self.budget.total,
                               "max_changes_per_node": self.budget.per_node}
        if self.undo_path is not None:
            block["backups"] = {"undo": str(self.undo_path),
                                "nodes": f"/var/backups/netdoctor/{self.run_id}/",
                                "rollback": f"netdoctor rollback {self.run_id} "
                                            f"--report-dir {self.undo_path.parent}"}
        return block

    def exit_status(self, pytest_status: int) -> int:
        """0 when nothing remains, 1 when something does, EXIT_REFUSED when refused."""
        if self.outcome.mode == "refused":
            return EXIT_REFUSED
        if self.outcome.mode in ("over-budget", "blocked"):
            return 1  # the run stopped with work left
        if self.outcome.mode == "applied":
            repaired = self.score_after == 0 and not self.still_failing
            return 0 if repaired and not self.outcome.failed and not self.outcome.left else 1
        return 0 if self.score_before == 0 else max(pytest_status, 1)


def verification_argv(settings: Settings, nodeids: Sequence[str], report_dir: Path,
                      inipath: Path | None) -> list[str]:
    """The command that runs the failing checks again, against the same cluster.

    Example:
        >>> from netdoctor.plugin.options import resolve_settings
        >>> s = resolve_settings({"kubeconfig": "/k", "remediate": True}, {}, {}, cwd=Path("/"))
        >>> verification_argv(s, ["t.py::a"], Path("/r"), None)[3:6]
        ['t.py::a', '--kubeconfig=/k', '--report-dir=/r']
    """
    argv = [sys.executable, "-m", "pytest", *nodeids]
    for spec in OPTIONS:
        value = getattr(settings, spec.name)
        if spec.name in _NOT_PASSED or value == spec.default or value is None:
            continue
        if spec.kind == "flag":
            argv += [spec.flag] if value else []
        elif spec.kind == "list":
            argv += [f"{spec.flag}={item}" for item in value]
        else:
            argv.append(f"{spec.flag}={value}")
    argv += [f"--report-dir={report_dir}", "--overwrite-report", "-q", "-p", "no:cacheprovider"]
    return argv + ([f"-c={inipath}"] if inipath else [])


def failing_functions(results: Sequence[Any]) -> list[str]:
    """Node ids of failed checks without their parameters (the nodes may have changed)."""
    ids = [r.nodeid.split("[", 1)[0] for r in results if r.outcome in ("failed", "error")]
    return list(dict.fromkeys(ids))


class Remediation:
    """The ``--remediate`` plugin object (one per run, on the controller)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.result: Result | None = None
        self.context: LiveContext | None = None
        self.checks_finished = False

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
        the causes are ranked into ``summary``, before the summary hook and the reports)."""
        try:
            self.result = self._remediate(summary)
        finally:
            self._close()
        summary["remediation"] = self.result.to_json()

    def _remediate(self, summary: dict[str, Any]) -> Result:
        state = get_state(self.config)
        settings, analysis = state.settings, state.analysis
        assert analysis is not None
        assert state.report_paths is not None
        directory = state.report_paths.directory
        log = RemediationLog(directory / LOG_NAME)
        result = Result(Outcome("skipped", ""), analysis.score, log_path=log.path,
                        log_lines=log.lines, run_id=state.run_id)
        if not self.checks_finished:
            result.outcome = _without_cluster(Decision(
                "skipped", "the checks did not run to the end: nothing is repaired"), log)
            return result
        if analysis.verdict == "inconclusive":  # never repair what was not observed, --force or not
            result.outcome = _without_cluster(Decision("refused", "verdict inconclusive"), log)
            return result
        policy = Policy(settings.dry_run, settings.force, settings.non_interactive, settings.yes)
        decision = decide(analysis.verdict, policy)
        if decision.mode in ("refused", "skipped"):
            result.outcome = _without_cluster(decision, log)
            return result
        from netdoctor.suite.remediation import DEFAULT_FLANNEL_MANIFEST, HookOptions, default_hooks

        signals = frozenset(n for n, present in analysis.signals.items() if present)
        self.context = ctx = LiveContext(LiveOptions(
            settings.kubeconfig, settings.context, state.run_id, settings.node_probe_image,
            settings.allow_control_plane, settings.setup_timeout), signals,
            _causes(summary.get("root_causes")), log)
        try:
            ctx.connect()
        except Exception as exc:  # no plan without the cluster's state: said, not guessed
            result.outcome = _without_cluster(Decision(
                "skipped", f"could not read the cluster to plan the repair: "
                           f"{type(exc).__name__}: {exc}"), log)
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
        outcome = Outcome(decision.mode, decision.reason)
        for round_no in range(1, ROUNDS + 1):
            plans, problems = make_plan(list(hooks.values()), ctx, log)
            name = "" if round_no == 1 else f"-{round_no}"
            header = (f"run {state.run_id}, round {round_no}, verdict {analysis.verdict}; "
                      f"budget {settings.max_changes} change(s), "
                      f"{settings.max_changes_per_node} per node")
            files = write_plan(directory, plans, stages, header, name)
            result.plan += plan_json(plans, stages)
            result.plan_files += [str(f) for f in files]
            self._show(header, plans, stages)
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
            cooling = {} if settings.retry_failed else cooldown.cooling()
            earlier = list(outcome.undos)

            def keep(undos: list[Undo], earlier: list[Undo] = earlier) -> None:
                write_undo(directory, state.run_id, earlier + undos)
            done = apply(list(hooks.values()), ctx, decided, plans, budget=result.budget,
                         log=log, cooling=cooling,
                         on_undo=keep,
                         spent=outcome)
            outcome = combine(outcome, done, problems)
            result.undo_path = write_undo(directory, state.run_id, outcome.undos)
            cooldown.record({s.name for s in done.steps if s.status == "failed"},
                            {s.name for s in done.steps if s.status == "applied"})
            result.outcome = outcome
            self._close()  # node pods go before the checks run again
            result.score_after, result.verification, result.still_failing, after = \
                self._verify(settings, analysis.results, directory / f"verify{name}", log)
            applied = any(s.status == "applied" for s in done.steps)
            if done.mode != "applied" or done.failed or not applied or result.score_after == 0:
                break
            ctx = self._reopen(ctx, _causes(after.get("root_causes")), log)
        result.outcome = outcome
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
                log: RemediationLog) -> tuple[int | None, str, list[str], dict[str, Any]]:
        """Run the failing checks again: their score, what was run, what still fails, and
        the run's summary."""
        nodeids = failing_functions(results)
        if not nodeids:
            return 0, "no check had failed", [], {}
        argv = verification_argv(settings, nodeids, report_dir, self.config.inipath)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("NETDOCTOR_") or k == "NETDOCTOR_KUBECONFIG"}
        env["NETDOCTOR_REMEDIATE"] = "0"  # the checks again, never a second repair
        log.write(f"verify: {' '.join(argv[1:])}")
        try:
            done = subprocess.run(argv, cwd=get_activation(self.config).node_root
                                  or self.config.rootpath, env=env, capture_output=True,
                                  text=True, timeout=VERIFY_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            log.write(f"verify: no result within {VERIFY_TIMEOUT:g}s")
            return None, "verification timed out", [], {}
        path = report_dir / "summary.json"
        if not path.exists():
            log.write(f"verify: exit {done.returncode}, no summary: {done.stderr[-300:]}")
            return None, f"verification run failed (exit {done.returncode})", [], {}
        after = json.loads(path.read_text())
        present = [k for k, v in after.get("signals", {}).items() if v]
        still = [t["nodeid"] for t in after.get("tests", [])
                 if t.get("outcome") in ("failed", "error")]
        log.write(f"verify: score {after.get('score')} ({', '.join(present) or 'no signals'}); "
                  f"{len(still)} check(s) still failing" + (f": {', '.join(still)}" if still
                                                            else ""))
        ran = len(after.get("tests", []))
        return (int(after.get("score", 0)),
                f"{len(nodeids)} check function(s) again, {ran} check(s), {len(still)} still "
                f"failing: {path}", still, after)

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

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """After an interrupt: remove the node pods if the summary hook could not."""
        self._close()

    @pytest.hookimpl(trylast=True)  # after the root causes and matrices it acted on
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Mode, before/after and every step."""
        if self.result is None:
            return
        terminalreporter.write_sep("=", "netdoctor remediation")
        for line in summary_lines(self.result):
            terminalreporter.write_line(line)


def summary_lines(result: Result) -> list[str]:
    """The terminal section's lines."""
    after = "-" if result.score_after is None else str(result.score_after)
    lines = [f"mode: {result.outcome.mode} ({result.outcome.reason})",
             f"score before: {result.score_before}, after: {after}"
             + (f" ({result.verification})" if result.verification else "")]
    for step in result.outcome.steps:
        first = step.detail.splitlines()[0] if step.detail else ""
        lines.append(f"  {step.status.upper():8} {step.name} {step.node or '-'}: {redact(first)}")
    lines += [f"  STILL FAILING {nodeid}" for nodeid in result.still_failing]
    if result.outcome.left:
        lines.append(f"left when it stopped: {', '.join(result.outcome.left)}")
    if result.budget is not None and result.outcome.mode != "refused":
        lines.append(f"changes: {result.outcome.changes} of --max-changes {result.budget.total}")
    if result.plan_files:
        lines.append(f"plan: {', '.join(result.plan_files)}")
    if result.undo_path is not None:
        lines.append(f"undo: {result.undo_path} (netdoctor rollback {result.run_id} "
                     f"--report-dir {result.undo_path.parent})")
    if result.log_path is not None:
        lines.append(f"log: {result.log_path}")
    return lines


def _causes(ranked: Any) -> tuple[tuple[str, str | None], ...]:
    """(id, node) of summary.json's ``root_causes``."""
    return tuple((str(c.get("id")), c.get("node")) for c in ranked or [] if isinstance(c, dict))


def _actionable(plans: Sequence[Plan]) -> bool:
    return any(not p.manual for p in plans)


def _without_cluster(decision: Decision, log: RemediationLog) -> Outcome:
    """A refused or skipped run: said and logged, the cluster never contacted."""
    log.write(f"remediation mode={decision.mode}: {decision.reason}")
    return Outcome(decision.mode, decision.reason)
