"""The netdoctor pytest plugin (entry point ``netdoctor = "netdoctor.plugin"``).

What a check can use:

* markers ``diagnose``, ``validate``, component markers and ``signal(name)``
  (see :mod:`netdoctor.plugin.markers`);
* the ``evidence`` fixture (:class:`netdoctor.plugin.results.EvidenceRecorder`) and
  :class:`netdoctor.model.CheckFailed`;
* :func:`netdoctor.plugin.state.get_state` for settings and the run id.

At the end of a run the results are scored (:mod:`netdoctor.plugin.scoring`) and written to
``report.html``, ``summary.json`` and ``analysis.md``, and summarised on the terminal.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from types import FrameType

import pytest

from netdoctor.plugin import hooks, markers, options, results
from netdoctor.plugin.reports import build_summary, plan_report_paths, write_reports
from netdoctor.plugin.scoring import BUILTIN_SIGNALS, SignalDefinition, Thresholds, analyze
from netdoctor.plugin.state import (
    STATE,
    RunState,
    get_cluster_profile,
    get_not_applicable,
    get_state,
    new_run_id,
)
from netdoctor.plugin.terminal import write_terminal_summary

__all__ = ["signal_definitions"]


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
    """Resolve settings, create the run state, register reporters (before pytest-html looks)."""
    markers.register(config)
    settings = options.settings_from_config(config, os.environ)
    worker_input = getattr(config, "workerinput", {})
    state = RunState(settings=settings, run_id=worker_input.get("netdoctor_run_id") or new_run_id())
    config.stash[STATE] = state
    config.pluginmanager.register(results, "netdoctor-results")
    _sigterm_as_interrupt(config)
    if _is_worker(config) or config.option.collectonly:
        return
    config.pluginmanager.register(results.ResultCollector(config), "netdoctor-collector")
    html_active = config.pluginmanager.hasplugin("html")
    user_html = getattr(config.option, "htmlpath", None) if html_active else None
    state.report_paths = plan_report_paths(
        settings.report_dir, overwrite=settings.overwrite_report, run_id=state.run_id,
        now=datetime.now(), html=Path(user_html) if user_html else None,
    )
    if html_active:
        if not user_html:
            config.option.htmlpath = str(state.report_paths.html)
            config.option.self_contained_html = True
        from netdoctor.plugin.html import HtmlExtras

        config.pluginmanager.register(HtmlExtras(config), "netdoctor-html")
    if settings.remediate and not settings.cleanup_only:
        from netdoctor.plugin.remediate import Remediation

        config.pluginmanager.register(Remediation(config), "netdoctor-remediate")


_PREVIOUS_SIGTERM = pytest.StashKey[object]()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _sigterm_as_interrupt(config: pytest.Config) -> None:
    # SIGTERM would end the process without running finalizers; as an interrupt, pytest
    # tears fixtures down and unconfigures, so probe pods (and a --lab cluster) are removed.
    if threading.current_thread() is threading.main_thread():
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)


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
    """Turn unknown or malformed ``signal`` markers into a collection error of their file."""
    report = yield
    if report.outcome != "passed":
        return report
    items = [item for item in report.result if isinstance(item, pytest.Item)]
    if not items:
        return report
    valid = signal_definitions(collector.config)
    problems = [p for item in items for p in markers.signal_marker_problems(item, valid)]
    if not problems:
        return report
    return pytest.CollectReport(report.nodeid, "failed", "\n".join(problems), [])


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Score the run and write summary.json and analysis.md (before pytest-html writes)."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or state.report_paths is None:
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
        if override not in ("confirmed", "partial", "none"):
            raise pytest.UsageError(f"pytest_netdoctor_verdict returned {override!r}")
        analysis = dataclasses.replace(analysis, verdict=override)
    state.analysis = analysis
    summary = build_summary(analysis)
    config.hook.pytest_netdoctor_summary(summary=summary, config=config)
    written = write_reports(analysis, summary, state.report_paths)
    html = state.report_paths.html if config.pluginmanager.hasplugin("html") else None
    state.written = tuple(([html] if html else []) + written)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Score, verdict, failing checks per signal and the report paths."""
    state = config.stash.get(STATE, None)
    if state is not None:
        write_terminal_summary(terminalreporter, state.analysis, state.written)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the objects registered at configure time."""
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]
    for name in ("netdoctor-remediate", "netdoctor-html", "netdoctor-collector",
                 "netdoctor-results"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
