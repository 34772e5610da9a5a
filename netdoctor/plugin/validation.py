"""Validate results in the reports: node-to-node matrices and the ranked root causes.

Loaded next to the core plugin. It reads what the ``validation`` fixture left in the stash,
ranks root causes once per run (``pytest_netdoctor_summary`` adds ``root_causes`` to
``summary.json``), and shows causes and matrices in the terminal summary and the HTML report.
``analysis.md`` renders the causes from ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import pytest

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.plugin import matrix
from netdoctor.probes.paths import Series
from netdoctor.probes.validate import Validation
from netdoctor.redact import redact
from netdoctor.rootcause import collect
from netdoctor.rootcause.model import RootCause
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
CAUSES = pytest.StashKey[list[RootCause]]()


def matrices(v: Validation, nodes: Sequence[str]) -> list[matrix.Matrix]:
    """Pod ping, pod HTTP, NodePort (k of n per cell) and MTU (1 per cell) matrices."""
    def cells(data: Mapping[Any, Series[Any]]) -> list[tuple[str, str, int, int]]:
        return [(p.source, p.target, s.passed, s.sent) for p, s in data.items()]

    found = [
        matrix.build("pod -> pod ping (probe -> echo pod)", cells(v.pod_ping), nodes),
        matrix.build("pod -> pod HTTP :8080", cells(v.pod_http), nodes),
        matrix.build(f"node -> NodePort {v.echo.node_port}", cells(v.nodeport), nodes),
        matrix.build("pod -> pod don't-fragment ping at the pod MTU",
                     [(p.source, p.target, int(m.result.ok), 1) for p, m in v.mtu_ping.items()],
                     nodes),
    ]
    return [m for m in found if m.cells]


def cause_line(c: RootCause) -> str:
    """``node: summary -> explains a, b``."""
    signals = [e for e in c.explains if "::" not in e]
    where = f"{c.node}: " if c.node and not c.summary.startswith(f"{c.node}:") else ""
    return (f"{where}{c.summary} [{c.id}]"
            + (f" -> explains {', '.join(signals)}" if signals else ""))


@pytest.hookimpl(tryfirst=True)
def pytest_netdoctor_summary(summary: dict[str, Any], config: pytest.Config) -> None:
    """Rank root causes from this run's measurements and results into ``root_causes``."""
    inputs = config.stash.get(VALIDATION, None)
    if inputs is None:
        return
    obs = collect.observations(inputs.validation, inputs.profile, summary.get("tests", []),
                               inputs.no_endpoints, inputs.unmatched)
    causes = rank(obs)
    config.stash[CAUSES] = causes
    summary["root_causes"] = [c.to_json() for c in causes]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """Root causes first, then the matrices."""
    inputs = config.stash.get(VALIDATION, None)
    if inputs is None:
        return
    causes = config.stash.get(CAUSES, [])
    terminalreporter.write_sep("=", "netdoctor root causes")
    for c in causes:
        terminalreporter.write_line(redact(cause_line(c)), red=True)
    if not causes:
        terminalreporter.write_line("none found")
    nodes = [n.name for n in inputs.profile.ready_nodes]
    for m in matrices(inputs.validation, nodes):
        terminalreporter.write_line("")
        for line in m.text().splitlines():
            terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str],
                                session: pytest.Session) -> None:
    """Root causes above everything else, matrices below the verdict."""
    config = session.config
    inputs = config.stash.get(VALIDATION, None)
    if inputs is None:
        return
    causes = config.stash.get(CAUSES, [])
    items = "".join(f"<li><b>{escape(redact(cause_line(c)))}</b><ul>"
                    + "".join(f"<li>{escape(redact(e))}</li>" for e in c.evidence)
                    + "</ul></li>" for c in causes) or "<li>none found</li>"
    prefix.insert(0, f'<div class="netdoctor-root-causes"><h2>Root causes</h2><ol>{items}'
                     "</ol></div>")
    nodes = [n.name for n in inputs.profile.ready_nodes]
    style = ("<style>.nd-ok{background:#cfc}.nd-loss{background:#ffc}.nd-fail{background:#fcc}"
             ".nd-matrix td,.nd-matrix th{padding:2px 8px;border:1px solid #ccc}</style>")
    prefix.append(style + "".join(m.html() for m in matrices(inputs.validation, nodes)))
