"""The ranked root causes of a run, from what the validate pass measured.

Loaded next to the core plugin. It reads what the ``validation`` fixture left in the stash and
ranks root causes once per run (``pytest_netdoctor_summary`` adds ``root_causes`` to
``summary.json``). The terminal summary, ``report.html`` and ``analysis.md`` render the causes
from ``summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.probes.validate import Validation
from netdoctor.rootcause import collect
from netdoctor.rootcause.rules import rank


@dataclass(frozen=True)
class RunInputs:
    """What the validate pass measured, for the end of the run."""

    validation: Validation
    profile: ClusterProfile
    no_endpoints: tuple[str, ...]
    unmatched: tuple[str, ...] | None = None
    """Services whose selector matches no workload and no pod (None: judge from pods)."""


VALIDATION = pytest.StashKey[RunInputs]()


@pytest.hookimpl(tryfirst=True)
def pytest_netdoctor_summary(summary: dict[str, Any], config: pytest.Config) -> None:
    """Rank root causes from this run's measurements and results into ``root_causes``."""
    inputs = config.stash.get(VALIDATION, None)
    if inputs is None:
        return
    obs = collect.observations(inputs.validation, inputs.profile, summary.get("tests", []),
                               inputs.no_endpoints, inputs.unmatched)
    summary["root_causes"] = [c.to_json() for c in rank(obs)]
    unread = inputs.validation.errors.get("node-probes")
    if unread:
        summary["root_causes_not_evaluated"] = {"node_facts": unread}
