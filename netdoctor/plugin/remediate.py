"""``pytest --remediate``: after the checks ran, repair what they found, then prove it.

Registered (as an object, on the controller only) when ``--remediate`` is given. Within
``pytest_netdoctor_summary`` (after scoring, before any report is written): the verdict goes
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
from html import escape
from pathlib import Path
from typing import Any

import pytest

from netdoctor.plugin.options import OPTIONS, Settings
from netdoctor.plugin.state import get_state
from netdoctor.redact import redact
from netdoctor.repair.live import LiveContext, LiveOptions
from netdoctor.repair.policy import Decision, Policy, decide
from netdoctor.repair.runner import Outcome, RemediationLog, run

EXIT_REFUSED = 6
LOG_NAME = "remediation.log"
VERIFY_TIMEOUT = 600.0
# Options that steer remediation or the reports; everything else is passed on to the
# verification run so that it looks at the same cluster the same way.
_NOT_PASSED = {"lab", "report_dir", "overwrite_report", "cleanup_only", "remediate", "dry_run",
               "force", "non_interactive", "max_disruptive", "allow_control_plane",
               "flannel_manifest", "dns_fallback"}


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

    def to_json(self) -> dict[str, Any]:
        """As summary.json stores it (``still_failing`` only after a verification run)."""
        block: dict[str, Any] = {
            "mode": self.outcome.mode, "reason": self.outcome.reason,
            "steps": [s.to_json() for s in self.outcome.steps],
            "score_before": self.score_before, "score_after": self.score_after}
        if self.verification:
            block["still_failing"] = list(self.still_failing)
        return block

    def exit_status(self, pytest_status: int) -> int:
        """0 when nothing remains, 1 when something does, EXIT_REFUSED when refused."""
        if self.outcome.mode == "refused":
            return EXIT_REFUSED
        if self.outcome.mode == "applied":
            repaired = self.score_after == 0 and not self.still_failing
            return 0 if repaired and not self.outcome.failed else 1
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

    @pytest.hookimpl(trylast=True)  # after the root causes are ranked into the summary
    def pytest_netdoctor_summary(self, summary: dict[str, Any], config: pytest.Config) -> None:
        """Run the remediation and add its block to summary.json."""
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
                        log_lines=log.lines)
        if not self.checks_finished:
            result.outcome = _without_cluster(Decision(
                "skipped", "the checks did not run to the end: nothing is repaired"), log)
            return result
        if analysis.verdict == "inconclusive":  # never repair what was not observed, --force or not
            result.outcome = _without_cluster(Decision("refused", "verdict inconclusive"), log)
            return result
        decision = decide(analysis.verdict, Policy(settings.dry_run, settings.force,
                                                   settings.non_interactive),
                          tty=sys.stdin.isatty(), ask=self._ask)
        if decision.mode in ("refused", "skipped"):
            result.outcome = _without_cluster(decision, log)
            return result
        from remediation import DEFAULT_FLANNEL_MANIFEST, HookOptions, default_hooks

        signals = frozenset(n for n, present in analysis.signals.items() if present)
        causes = tuple((str(c.get("id")), c.get("node"))
                       for c in summary.get("root_causes") or [] if isinstance(c, dict))
        self.context = ctx = LiveContext(LiveOptions(
            settings.kubeconfig, settings.context, state.run_id, settings.node_probe_image,
            settings.allow_control_plane, settings.setup_timeout), signals, causes, log)
        ctx.connect()
        hooks = default_hooks(HookOptions(
            run_id=state.run_id, flannel_manifest=settings.flannel_manifest
            or DEFAULT_FLANNEL_MANIFEST, dns_fallback=settings.dns_fallback,
            external_name=settings.external_name,
            cni=(ctx.profile.cni if ctx.profile and ctx.profile.cni != "unknown" else "flannel")))
        self.config.hook.pytest_netdoctor_remediation_hooks(config=self.config, hooks=hooks)
        result.outcome = run(list(hooks.values()), ctx, decision,
                             max_disruptive=settings.max_disruptive, log=log)
        if decision.mode == "applied":
            self._close()  # node pods go before the checks run again
            result.score_after, result.verification, result.still_failing = self._verify(
                settings, analysis.results, directory / "verify", log)
        return result

    def _verify(self, settings: Settings, results: Sequence[Any], report_dir: Path,
                log: RemediationLog) -> tuple[int | None, str, list[str]]:
        """Run the failing checks again: their score, what was run, what still fails."""
        nodeids = failing_functions(results)
        if not nodeids:
            return 0, "no check had failed", []
        argv = verification_argv(settings, nodeids, report_dir, self.config.inipath)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("NETDOCTOR_") or k == "NETDOCTOR_KUBECONFIG"}
        env["NETDOCTOR_REMEDIATE"] = "0"  # the checks again, never a second repair
        log.write(f"verify: {' '.join(argv[1:])}")
        try:
            done = subprocess.run(argv, cwd=self.config.rootpath, env=env, capture_output=True,
                                  text=True, timeout=VERIFY_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            log.write(f"verify: no result within {VERIFY_TIMEOUT:g}s")
            return None, "verification timed out", []
        path = report_dir / "summary.json"
        if not path.exists():
            log.write(f"verify: exit {done.returncode}, no summary: {done.stderr[-300:]}")
            return None, f"verification run failed (exit {done.returncode})", []
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
                f"failing: {path}", still)

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

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        """The before/after table in report.html."""
        if self.result is not None:
            prefix.append(summary_html(self.result))


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
    if result.log_path is not None:
        lines.append(f"log: {result.log_path}")
    return lines


def summary_html(result: Result) -> str:
    """Before/after and the steps as an HTML fragment (escaped, redacted)."""
    after = "-" if result.score_after is None else str(result.score_after)
    rows = "".join(f"<tr><td>{escape(s.status)}</td><td>{escape(s.name)}</td>"
                   f"<td>{escape(s.node or '-')}</td><td><pre>{escape(redact(s.detail))}</pre>"
                   "</td></tr>" for s in result.outcome.steps)
    still = ("<p>Still failing after the repair:</p><ul>"
             + "".join(f"<li>{escape(n)}</li>" for n in result.still_failing) + "</ul>"
             if result.still_failing else "")
    return (f'<div class="netdoctor-remediation"><h2>Remediation: {escape(result.outcome.mode)}'
            f"</h2><p>{escape(result.outcome.reason)}</p><table><tr><th>Score before</th>"
            f"<th>Score after</th></tr><tr><td>{result.score_before}</td><td>{after}</td></tr>"
            f"</table><table><tr><th>Status</th><th>Step</th><th>Node</th><th>Detail</th></tr>"
            f"{rows}</table>{still}</div>")


def _without_cluster(decision: Decision, log: RemediationLog) -> Outcome:
    """A refused or skipped run: said and logged, the cluster never contacted."""
    log.write(f"remediation mode={decision.mode}: {decision.reason}")
    return Outcome(decision.mode, decision.reason)
