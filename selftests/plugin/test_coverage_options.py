"""``--peers``, ``--coverage-seed``, ``--full-mesh`` and their ini twins choose the node pairs a
run collects; the terminal, summary.json and report.html state the coverage."""

from __future__ import annotations

import json

import pytest

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

# Twelve Ready nodes without a cluster: the engine's parametrization reads this list.
CONFTEST = """
import importlib
from netdoctor.suite import FIXTURES

cluster = importlib.import_module(FIXTURES + ".cluster")
cluster.ready_node_names = lambda config: [f"worker-{i}" for i in range(12)]
"""

CHECKS = """
import pytest
pytestmark = pytest.mark.diagnose

def test_path(node_pair):
    assert node_pair.source != node_pair.target
"""


def _pairs(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "test_path[" in line]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    return pytester


@pytest.mark.parametrize(("args", "ini", "count"), [
    ((), "", 36),
    (("--peers", "1"), "", 12),
    ((), "netdoctor_peers = 5", 60),
    (("--peers", "2"), "netdoctor_peers = 5", 24),  # the CLI wins over the ini
    (("--full-mesh",), "", 132),
    ((), "netdoctor_full_mesh = true", 132),
])
def test_options_and_ini_twins_choose_the_pairs(suite: pytest.Pytester, args: tuple[str, ...],
                                                ini: str, count: int) -> None:
    if ini:
        suite.makeini(f"[pytest]\n{ini}\n")
    result = suite.runpytest(*PLUGIN, "--collect-only", "-q", "--coverage-seed=0", *args)
    assert len(_pairs(result)) == count, result.stdout.str()


def test_seed_is_deterministic_and_rotates(suite: pytest.Pytester) -> None:
    first = _pairs(suite.runpytest(*PLUGIN, "--collect-only", "-q", "--coverage-seed=2"))
    again = _pairs(suite.runpytest(*PLUGIN, "--collect-only", "-q", "--coverage-seed=2"))
    suite.makeini("[pytest]\nnetdoctor_coverage_seed = 3\n")
    other = _pairs(suite.runpytest(*PLUGIN, "--collect-only", "-q"))
    assert first == again
    assert len(first) == len(other) == 36
    assert not set(first) & set(other)  # another rotation: other offsets, other pairs


@pytest.mark.parametrize(("flag", "message"), [
    ("--peers=0", "invalid value from --peers: expected a whole number >= 1, got '0'"),
    ("--coverage-seed=-1", "invalid value from --coverage-seed: expected a whole number >= 0"),
    ("--api-qps=0", "invalid value from --api-qps: expected a positive number per second"),
    ("--api-burst=x", "invalid value from --api-burst: expected a whole number, got 'x'"),
])
def test_bad_values_are_one_usage_error(suite: pytest.Pytester, flag: str, message: str) -> None:
    result = suite.runpytest(*PLUGIN, "--collect-only", flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: netdoctor: {message}*"])


def test_the_run_states_its_coverage(suite: pytest.Pytester) -> None:
    reports = suite.path / "out"
    result = suite.runpytest(*PLUGIN, "--coverage-seed=1", f"--report-dir={reports}")
    result.assert_outcomes(passed=36)
    result.stdout.fnmatch_lines([
        "coverage: 36 of 132 node pairs (each node to 3 peers, rotation 2 of 4, "
        "--coverage-seed 1; 4 successive seeds cover every pair; --full-mesh for all)"])
    block = json.loads((reports / "summary.json").read_text())["coverage"]
    assert block["mode"] == "sampled"
    assert (block["pairs"], block["total_pairs"], block["peers"], block["seed"]) == (36, 132, 3, 1)
    assert block["widened"] == []
    assert "coverage: 36 of 132 node pairs" in (reports / "report.html").read_text()
