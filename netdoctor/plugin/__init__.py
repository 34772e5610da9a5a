"""The netdoctor pytest plugin (entry point ``netdoctor = "netdoctor.plugin"``).

What a check can use:

* markers ``diagnose``, ``validate``, component markers and ``signal(name)``
  (see :mod:`netdoctor.plugin.markers`);
* the ``evidence`` fixture (:class:`netdoctor.plugin.results.EvidenceRecorder`) and
  :class:`netdoctor.model.CheckFailed`;
* :func:`netdoctor.plugin.state.get_state` for settings and the run id.

At the end of a run the results are scored (:mod:`netdoctor.plugin.scoring`) and written to
``report.html``, ``summary.json`` and ``analysis.md``, and summarised on the terminal. All of
that happens only in runs that collect checks (:mod:`netdoctor.plugin.activation`).

The plugin also loads ``--lab`` (:mod:`netdoctor.plugin.lab_provider`), every module of the
suite's fixtures package (:data:`netdoctor.suite.FIXTURES`, the checkout's ``fixtures/``) and the
root-cause ranking (:mod:`netdoctor.plugin.validation`), so a run of the installed package
(``netdoctor diagnose``, ``pytest --pyargs netdoctor.suite.tests``) has all that a run from the
checkout has.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import pkgutil
import signal
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

from netdoctor.plugin import activation, argv, hooks, junit, markers, options, results
from netdoctor.plugin.interrupts import EXIT_INTERRUPTED, signal_name
from netdoctor.plugin.reports import build_summary, write_reports
from netdoctor.plugin.scoring import (
    BUILTIN_SIGNALS,
    EXIT_INCONCLUSIVE,
    VERDICTS,
    Analysis,
    SignalDefinition,
    Thresholds,
    analyze,
)
from netdoctor.plugin.state import (
    RUN_ID_ENV,
    STATE,
    RunState,
    get_cluster_profile,
    get_not_applicable,
    get_state,
    new_run_id,
)
from netdoctor.plugin.terminal import write_terminal_summary
from netdoctor.suite import FIXTURES

__all__ = ["signal_definitions"]


def _fixture_modules() -> list[str]:
    """Every module of the suite's fixtures package, in name order."""
    spec = importlib.util.find_spec(FIXTURES)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{FIXTURES} is not importable: install netdoctor (in a checkout: "
                          "pip install -e . , as scripts/bootstrap does)")
    found = pkgutil.iter_modules(spec.submodule_search_locations)
    return [f"{FIXTURES}.{m.name}" for m in sorted(found, key=lambda m: m.name)]


# The fixtures import netdoctor.plugin.validation: registered first, it is imported as a plugin
# (assertion rewriting needs plugins imported as such).
pytest_plugins = ["netdoctor.plugin.lab_provider", "netdoctor.plugin.validation",
                  *_fixture_modules()]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the ``netdoctor_*`` hook specifications."""
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``netdoctor`` option group and ini twins."""
    options.add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Resolve settings and create the run state; reports wait for collected checks."""
    markers.register(config)
    argv.refuse_spaced_paths(config)
    _quiet_http_client()
    settings = options.settings_from_config(config, os.environ)
    worker_input = getattr(config, "workerinput", {})
    state = RunState(settings=settings, run_id=worker_input.get("netdoctor_run_id")
                     or os.environ.get(RUN_ID_ENV) or new_run_id())
    config.stash[STATE] = state
    config.pluginmanager.register(results, "netdoctor-results")
    config.pluginmanager.register(junit, "netdoctor-junit")
    activation.configure(config)
    _sigterm_as_interrupt(config)
    if _is_worker(config) or config.option.collectonly:
        return
    config.pluginmanager.register(results.ResultCollector(config), "netdoctor-collector")
    config.pluginmanager.register(_InterruptWatch(config), "netdoctor-interrupts")
    if (config.pluginmanager.hasplugin("html") and getattr(config.option, "htmlpath", None)
            and activation.get_activation(config).asked):
        # pytest-html picks its report class now: a netdoctor run's report is one file
        # that opens offline and attaches in CI, also where the user named it.
        config.option.self_contained_html = True
    if settings.remediate and not settings.cleanup_only:
        from netdoctor.plugin.remediate import Remediation

        config.pluginmanager.register(Remediation(config), "netdoctor-remediate")


_PREVIOUS_SIGTERM = pytest.StashKey[object]()


def _sigterm_as_interrupt(config: pytest.Config) -> None:
    # SIGTERM would end the process without running finalizers; as a Ctrl-C, pytest tears
    # fixtures down and unconfigures, so probe pods (and a --lab cluster) are removed. It is
    # raised again as SIGINT rather than as an exception here: inside the run's event loop,
    # asyncio turns SIGINT into a clean cancellation of its task.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        state = config.stash.get(STATE, None)
        if state is not None and not state.interrupted:
            state.interrupted = signal_name(signum)
        signal.raise_signal(signal.SIGINT)

    if threading.current_thread() is threading.main_thread():
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, interrupt)


def _quiet_http_client() -> None:
    """httpx logs every API request at INFO: with ``--log-cli-level=INFO`` (the run's phase
    log) thousands of lines hid the few of ``netdoctor.run``. Left alone when set already."""
    http = logging.getLogger("httpx")
    if http.level == logging.NOTSET:
        http.setLevel(logging.WARNING)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """xdist controller: give workers the same run id."""
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    node.workerinput["netdoctor_run_id"] = get_state(config).run_id  # type: ignore[attr-defined]


def signal_definitions(config: pytest.Config) -> tuple[SignalDefinition, ...]:
    """Built-in signals plus those from ``pytest_netdoctor_signals`` (computed once per run)."""
    state = get_state(config)
    if state.definitions is None:
        found = list(BUILTIN_SIGNALS)
        for extra in config.hook.pytest_netdoctor_signals(config=config):
            found += [d for d in extra if d.name not in {f.name for f in found}]
        state.definitions = tuple(found)
    return state.definitions


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Turn unknown or malformed ``signal`` and ``measures`` markers into a collection error
    of their file."""
    report = yield
    if report.outcome == "failed" and isinstance(collector, pytest.File):
        activation.collect_failed(collector.config, collector.path)
    if report.outcome != "passed":
        return report
    items = [item for item in report.result if isinstance(item, pytest.Item)]
    if not items:
        return report
    valid = signal_definitions(collector.config)
    problems = [p for item in items for p in (*markers.signal_marker_problems(item, valid),
                                              *markers.measures_marker_problems(item))]
    if not problems:
        return report
    return pytest.CollectReport(report.nodeid, "failed", "\n".join(problems), [])


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Note deselected checks (a run that deselects them all asked for them)."""
    if items:
        activation.deselected(items[0].config, items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Activate the run when it collected checks (before the fixtures connect)."""
    if STATE in session.config.stash:
        activation.activate(session)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Start report.html before the checks; drop it after them when none measured."""
    if STATE in session.config.stash:
        activation.checks_start(session)
    try:
        return (yield)
    finally:
        if STATE in session.config.stash:
            activation.checks_done(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Score the run and write summary.json and analysis.md (before pytest-html writes); a
    run that asked for checks and ran none says so and fails instead."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or _is_worker(config):
        return
    found = activation.get_activation(config)
    found.nothing_ran = "" if state.interrupted else activation.ran_nothing(config, exitstatus)
    if found.nothing_ran:
        session.exitstatus = (exitstatus if exitstatus == pytest.ExitCode.INTERRUPTED
                              else activation.EXIT_NOTHING_RAN)
        return
    if state.interrupted:
        session.exitstatus = EXIT_INTERRUPTED
    if state.report_paths is None or not (activation.measured(config) or state.interrupted):
        return
    settings = state.settings
    analysis = analyze(
        list(state.results.values()), signal_definitions(config),
        Thresholds(settings.score_confirmed, settings.score_partial),
        run_id=state.run_id, cluster=get_cluster_profile(config),
        not_applicable=get_not_applicable(config),
    )
    override = config.hook.pytest_netdoctor_verdict(
        score=analysis.score, signals=dict(analysis.signals), config=config)
    if override is not None:
        if override not in VERDICTS:
            raise pytest.UsageError(f"pytest_netdoctor_verdict returned {override!r}")
        analysis = dataclasses.replace(analysis, verdict=override)
    state.analysis = analysis
    summary = _end_of_run(config, analysis)
    if state.interrupted:  # before the checks ended, or while repairing: no verdict
        state.analysis = analysis = dataclasses.replace(analysis, verdict="interrupted")
        summary.update(verdict="interrupted", interrupted=state.interrupted)
        session.exitstatus = EXIT_INTERRUPTED
    state.summary = summary
    written = write_reports(analysis, summary, state.report_paths)
    html = state.report_paths.html if config.pluginmanager.hasplugin("html") else None
    state.written = tuple(([html] if html else []) + written)
    if analysis.verdict == "inconclusive" and session.exitstatus in (0, 1):
        session.exitstatus = EXIT_INCONCLUSIVE  # failed checks or not: the answer is unknown


def _end_of_run(config: pytest.Config, analysis: Analysis) -> dict[str, Any]:
    """The end of a run, in this order: the analysis (scored results) -> the ranked causes
    -> remediation (with ``--remediate``) -> the summary hook (plugins add keys) -> JUnit
    properties; the other reports are written from what this returns."""
    from netdoctor.plugin.validation import cause_summary, rank_causes  # a registered plugin

    summary = build_summary(analysis)
    ranking = rank_causes(config, analysis.results)
    if ranking is not None:
        summary.update(cause_summary(ranking, config))
    remediation = config.pluginmanager.get_plugin("netdoctor-remediate")
    if remediation is not None:
        remediation.remediate(summary)
    config.hook.pytest_netdoctor_summary(summary=summary, config=config)
    junit.add_properties(summary, config)
    return summary


class _InterruptWatch:
    """Remembers a Ctrl-C or SIGTERM (not a ``pytest.exit``) that stopped the checks."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Mark the run interrupted: verdict ``interrupted``, exit status 8."""
        state = self.config.stash.get(STATE, None)
        # pytest.exit() and "Interrupted: N errors during collection" are KeyboardInterrupts too
        if isinstance(excinfo.value, pytest.exit.Exception | pytest.Session.Interrupted) or (
                state is None):
            return
        if not state.interrupted:
            state.interrupted = str(excinfo.value) or "SIGINT"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Score, verdict, failing checks per signal and the report paths."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    nothing = activation.get_activation(config).nothing_ran
    if nothing:
        terminalreporter.write_line(f"netdoctor: no check ran: {nothing}; nothing was measured, "
                                    "so there is no verdict", red=True)
    write_terminal_summary(terminalreporter, state.analysis, state.written, state.summary)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the objects registered at configure time."""
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]
    for name in ("netdoctor-remediate", "netdoctor-html", "netdoctor-collector",
                 "netdoctor-interrupts",
                 "netdoctor-junit", "netdoctor-results"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
