"""Per-run state, kept in ``config.stash`` (never on private config attributes).

Other modules reach the run through :func:`get_state`; the cluster access layer publishes what
it learned about the cluster with :func:`set_cluster_profile`, which ``summary.json`` copies into
its ``cluster`` key.

Example (in a session fixture of the access layer)::

    set_cluster_profile(request.config, {"nodes": 3, "cni": "flannel"})
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netdoctor.model import CheckResult
from netdoctor.plugin.options import Settings
from netdoctor.plugin.scoring import Analysis, SignalDefinition


@dataclass(frozen=True)
class ReportPaths:
    """Where this run's reports go (decided once, at configure time)."""

    directory: Path
    html: Path | None
    json: Path
    markdown: Path


@dataclass
class RunState:
    """Mutable state of one pytest run."""

    settings: Settings
    run_id: str
    report_paths: ReportPaths | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)
    definitions: tuple[SignalDefinition, ...] | None = None
    analysis: Analysis | None = None
    summary: dict[str, Any] | None = None
    """The ``summary.json`` document once the run is scored (reports render it)."""
    written: tuple[Path, ...] = ()
    interrupted: str = ""
    """The signal that interrupted the run (``SIGINT``, ``SIGTERM``), "" when none did."""

    @property
    def probe_namespace(self) -> str:
        """The namespace for probe pods: the configured one or ``netdoctor-<run-id>``."""
        return self.settings.probe_namespace or f"netdoctor-{self.run_id}"


RUN_ID_ENV = "NETDOCTOR_RUN_ID"
"""The run id a ``--remediate`` run gives its verification run (never set by hand)."""
STATE = pytest.StashKey[RunState]()
CLUSTER_PROFILE = pytest.StashKey[dict[str, Any]]()
NOT_APPLICABLE = pytest.StashKey[dict[str, str]]()


def new_run_id() -> str:
    """A short random run id (6 hex digits), used in names and labels of created objects."""
    return secrets.token_hex(3)


def get_state(config: pytest.Config) -> RunState:
    """The run state; raises ``KeyError`` when the netdoctor plugin is not active."""
    return config.stash[STATE]


def set_cluster_profile(config: pytest.Config, profile: Mapping[str, Any]) -> None:
    """Publish the cluster profile (JSON-serialisable) for ``summary.json``'s ``cluster`` key."""
    config.stash[CLUSTER_PROFILE] = dict(profile)


def get_cluster_profile(config: pytest.Config) -> dict[str, Any]:
    """The published cluster profile, or an empty dict when nothing published one."""
    profile: dict[str, Any] = config.stash.get(CLUSTER_PROFILE, {})
    return dict(profile)


def set_not_applicable(config: pytest.Config, reasons: Mapping[str, str]) -> None:
    """Publish the signals that cannot occur on this cluster (signal -> reason), decided
    once per session from the cluster profile; the score leaves them out."""
    config.stash[NOT_APPLICABLE] = dict(reasons)


def get_not_applicable(config: pytest.Config) -> dict[str, str]:
    """The published not-applicable signals (empty when nothing published any)."""
    found: dict[str, str] = config.stash.get(NOT_APPLICABLE, {})
    return dict(found)
