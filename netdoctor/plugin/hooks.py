"""Hook specifications: the few places where a conftest or plugin can extend netdoctor.

Implement them in a ``conftest.py`` or plugin module::

    def pytest_netdoctor_signals(config):
        return [SignalDefinition("mtu_blackhole", "large packets vanish between nodes")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from netdoctor.plugin.scoring import SignalDefinition, Verdict
    from netdoctor.repair.model import RemediationHook
    from netdoctor.rootcause.ranking import Detector


@pytest.hookspec
def pytest_netdoctor_signals(config: pytest.Config) -> Sequence[SignalDefinition]:
    """Return extra signal definitions, usable in ``@pytest.mark.signal(name)``.

    Called once, before the first test file is collected (conftest files below the rootdir
    must therefore live at the rootdir or be loaded early). Extra signals count towards the
    score like the built-in six and appear in ``summary.json``'s ``signals``.
    """
    raise NotImplementedError


@pytest.hookspec(firstresult=True)
def pytest_netdoctor_verdict(
    score: int, signals: Mapping[str, bool], config: pytest.Config
) -> Verdict | None:
    """Override the verdict. Return ``"confirmed"``, ``"partial"``, ``"none"``, or ``None``.

    The first non-``None`` result wins; ``None`` everywhere keeps the threshold verdict.
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_netdoctor_summary(summary: dict[str, Any], config: pytest.Config) -> None:
    """Extend ``summary.json`` in place (add keys; do not change the documented ones).

    Called once, on the controller, after scoring, the ranked causes (``root_causes``,
    ``unexplained``) and a ``--remediate`` run (``remediation``), before any report is
    written.
    """


@pytest.hookspec
def pytest_netdoctor_remediation_hooks(
    config: pytest.Config, hooks: dict[str, RemediationHook]
) -> None:
    """Add, replace or remove remediation hooks (by name) in place before a ``--remediate``
    run plans; ``hooks`` holds every registered hook of ``remediation/``.
    """


@pytest.hookspec
def pytest_netdoctor_detectors(config: pytest.Config) -> Sequence[Detector]:
    """Return extra root-cause detectors.

    A detector is a callable taking :class:`netdoctor.rootcause.model.Observations` and
    yielding :class:`netdoctor.rootcause.ranking.Candidate` causes; the ranking treats them
    like the built-in ones (they rank when they explain a failed or flaky check or a present
    signal). Called once per run, at its end, on the controller::

        def pytest_netdoctor_detectors(config):
            return [my_detector]
    """
    raise NotImplementedError
