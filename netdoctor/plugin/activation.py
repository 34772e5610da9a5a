"""Inert unless asked: the plugin acts only on runs that collect netdoctor's checks.

A check is a test marked ``diagnose``, ``validate`` or ``signal`` (:func:`~.markers.is_check`).
The plugin is loaded into every pytest run of an environment where netdoctor is installed; a
run that collects no check gets nothing from it: no cluster connection, no verdict, no report,
no terminal section. Once collection is done, a run with checks is *activated*: its report
paths are fixed and the fixtures connect to the cluster; netdoctor's report.html starts with
the first check and is dropped again when no check measured anything.

A run that asked for the checks (``-m diagnose``/``-m validate``, the suite's folder or package
as an argument, checks deselected, a suite file that failed to collect) but ran none says so in
one line and ends with exit status :data:`EXIT_NOTHING_RAN` (pytest's own "no tests ran"
status; a collection error keeps pytest's status 2). It never prints a verdict for a run that
measured nothing.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from netdoctor.plugin.markers import is_check
from netdoctor.plugin.reports import plan_report_paths, report_dir_problem
from netdoctor.plugin.state import get_state
from netdoctor.suite import TESTS

EXIT_NOTHING_RAN = int(pytest.ExitCode.NO_TESTS_COLLECTED)
"""Exit status of a run that asked for netdoctor's checks but ran none (5, as pytest's)."""

_MARK_WORDS = re.compile(r"\b(diagnose|validate)\b")


@dataclass
class Activation:
    """What the run asked for and collected (one per run, in ``config.stash``)."""

    asked: bool = False
    checks: frozenset[str] = frozenset()
    deselected: int = 0
    collect_errors: int = 0
    nothing_ran: str = ""
    html_report: object | None = None
    node_root: Path | None = None
    """The folder the checks' node ids are relative to (the rootdir, or the installed
    package's folder when it lies outside the rootdir)."""
    new_dirs: list[Path] = field(default_factory=list)
    """Folders made for netdoctor's report.html (removed again when it is dropped)."""

    @property
    def active(self) -> bool:
        """The run collected checks: the plugin connects, scores and reports."""
        return bool(self.checks)


ACTIVATION = pytest.StashKey[Activation]()


def get_activation(config: pytest.Config) -> Activation:
    """This run's :class:`Activation` (an inactive one before configure)."""
    return config.stash.get(ACTIVATION, Activation())


def suite_folder() -> Path | None:
    """The folder the checks are imported from (the checkout's ``tests/`` or the installed
    ``netdoctor/suite/tests``), or ``None`` when the package is not importable."""
    try:
        spec = importlib.util.find_spec(TESTS)
    except ImportError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def _within(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def args_name_the_suite(config: pytest.Config) -> bool:
    """Whether a collection argument is the suite's package or lies in its folder."""
    folder = suite_folder()
    for arg in config.args:
        where = arg.split("::", 1)[0]
        if config.option.pyargs and (where == TESTS or where.startswith(f"{TESTS}.")):
            return True
        for base in (config.invocation_params.dir, config.rootpath):
            if _within((base / where).resolve(), folder):
                return True
    return False


def configure(config: pytest.Config) -> None:
    """Record what the command line asked for (nothing is planned or connected yet)."""
    activation = Activation()
    activation.asked = bool(_MARK_WORDS.search(config.option.markexpr or "")) or (
        args_name_the_suite(config))
    config.stash[ACTIVATION] = activation


def deselected(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselected checks mean the run aimed at the suite."""
    activation = get_activation(config)
    count = sum(1 for item in items if is_check(item))
    activation.deselected += count
    activation.asked = activation.asked or count > 0


def collect_failed(config: pytest.Config, path: Path) -> None:
    """A suite file that failed to collect means the run aimed at the suite."""
    activation = get_activation(config)
    if _within(path.resolve(), suite_folder()) or activation.asked:
        activation.asked = True
        activation.collect_errors += 1


def node_root(item: pytest.Item) -> Path:
    """The folder ``item``'s node id is relative to (a re-run there finds it by node id)."""
    parts = Path(item.nodeid.split("::", 1)[0]).parts
    return item.path.parents[len(parts) - 1] if parts else item.path.parent


def activate(session: pytest.Session) -> bool:
    """After collection: with checks collected, plan the reports.

    Returns whether the run is active.
    """
    config = session.config
    activation = get_activation(config)
    checks = [item for item in session.items if is_check(item)]
    activation.checks = frozenset(item.nodeid for item in checks)
    if checks:
        activation.node_root = node_root(checks[0])
    if not activation.checks or hasattr(config, "workerinput") or config.option.collectonly:
        return activation.active
    activation.asked = True
    state = get_state(config)
    problem = report_dir_problem(state.settings.report_dir)
    if problem:
        raise pytest.UsageError(
            f"netdoctor: report directory {state.settings.report_dir} (from "
            f"{state.settings.sources['report_dir']}) is unusable: {problem}")
    html_active = config.pluginmanager.hasplugin("html")
    user_html = getattr(config.option, "htmlpath", None) if html_active else None
    state.report_paths = plan_report_paths(
        state.settings.report_dir, overwrite=state.settings.overwrite_report,
        run_id=state.run_id, now=datetime.now(), html=Path(user_html) if user_html else None)
    if html_active:
        from netdoctor.plugin.html import HtmlExtras

        config.pluginmanager.register(HtmlExtras(config), "netdoctor-html")
    return True


def checks_start(session: pytest.Session) -> None:
    """Before the first check (the cluster answered): start netdoctor's report.html."""
    config = session.config
    activation, state = get_activation(config), get_state(config)
    if (not activation.active or state.report_paths is None
            or not config.pluginmanager.hasplugin("html")
            or getattr(config.option, "htmlpath", None)):
        return
    activation.html_report = _start_html_report(session, state.report_paths.html)


def _start_html_report(session: pytest.Session, path: Path | None) -> object | None:
    # pytest-html starts its report at configure when --html is given; netdoctor's own
    # report.html starts only now that the run has checks, so a run without them writes
    # nothing. The report object missed the session start and collection: replay them.
    from pytest_html import plugin as html_plugin

    config = session.config
    assert path is not None
    activation = get_activation(config)
    activation.new_dirs = [d for d in [path.parent, *path.parent.parents] if not d.exists()]
    config.option.htmlpath = str(path)
    config.option.self_contained_html = True
    before = set(config.pluginmanager.get_plugins())
    html_plugin.pytest_configure(config)
    started = None
    for report in set(config.pluginmanager.get_plugins()) - before:
        for replay in ("pytest_sessionstart", "pytest_collection_finish"):
            getattr(report, replay, lambda session: None)(session)
        started = report
    return started


def measured(config: pytest.Config) -> bool:
    """Whether a check of this run passed, failed or errored (not only skipped)."""
    results = get_state(config).results
    return any(results[n].outcome != "skipped" for n in get_activation(config).checks
               if n in results)


def checks_done(config: pytest.Config) -> None:
    """After the test loop: a run whose checks measured nothing writes no report.html."""
    activation = get_activation(config)
    if activation.html_report is not None and not measured(config):
        config.pluginmanager.unregister(activation.html_report)
        activation.html_report = None
        for folder in activation.new_dirs:  # made by pytest-html for the report, still empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def ran_nothing(config: pytest.Config, exitstatus: int) -> str:
    """Why a run that asked for checks measured nothing ("" when it measured something, or
    when an access problem, a usage error or an interrupt stopped it and said why)."""
    activation = get_activation(config)
    if not activation.asked or config.option.collectonly or measured(config):
        return ""
    results = get_state(config).results
    if activation.collect_errors:
        return f"{activation.collect_errors} file(s) failed to collect"
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return ""
    if activation.checks:
        skipped = [results[n] for n in sorted(activation.checks) if n in results]
        first = skipped[0].message.splitlines()[0] if skipped and skipped[0].message else ""
        return f"all {len(activation.checks)} skipped" + (f" (first: {first})" if first else "")
    if activation.deselected:
        return f"all {activation.deselected} deselected by -m/-k"
    return "none collected"
