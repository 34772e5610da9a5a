"""The ranked root causes of a run, from what the validate pass measured.

Loaded next to the core plugin. The ``validation`` fixture leaves its measurements in the
stash; at the end of the run the engine calls :func:`rank_causes` with the run's typed results
(after scoring, before the summary hook and the reports), and :func:`cause_summary` puts the
causes and the unexplained checks into ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.model import CheckResult
from netdoctor.probes.validate import Validation
from netdoctor.rootcause import collect
from netdoctor.rootcause.model import Ranking
from netdoctor.rootcause.ranking import DETECTORS, Detector
from netdoctor.rootcause.rules import explain


@dataclass(frozen=True)
class RunInputs:
    """What the validate pass measured, for the end of the run."""

    validation: Validation
    profile: ClusterProfile
    no_endpoints: tuple[str, ...]
    unmatched: tuple[str, ...] | None = None
    """Services whose selector matches no workload and no pod (None: judge from pods)."""


VALIDATION = pytest.StashKey[RunInputs]()


def detectors(config: pytest.Config) -> list[Detector]:
    """The built-in cause detectors and those plugins add with
    ``pytest_netdoctor_detectors``."""
    found = list(DETECTORS)
    for extra in config.hook.pytest_netdoctor_detectors(config=config):
        found += [d for d in extra if d not in found]
    return found


def rank_causes(config: pytest.Config, results: Sequence[CheckResult]) -> Ranking | None:
    """The run's ranked causes and unexplained checks, from its measurements and typed
    results; ``None`` when nothing was measured for the ranking."""
    inputs = config.stash.get(VALIDATION, None)
    if inputs is None:
        return None
    obs = collect.observations(inputs.validation, inputs.profile, results,
                               inputs.no_endpoints, inputs.unmatched)
    return explain(obs, detectors(config))


def cause_summary(ranking: Ranking, config: pytest.Config) -> dict[str, Any]:
    """``summary.json``'s ``root_causes``, ``unexplained`` (and why node facts were not
    read, when they were not)."""
    out: dict[str, Any] = {"root_causes": [c.to_json() for c in ranking.causes],
                           "unexplained": list(ranking.unexplained)}
    inputs = config.stash.get(VALIDATION, None)
    unread = inputs.validation.errors.get("node-probes") if inputs else None
    if unread:
        out["root_causes_not_evaluated"] = {"node_facts": unread}
    return out
