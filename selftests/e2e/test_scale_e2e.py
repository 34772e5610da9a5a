"""A healthy 12-node lab with default coverage: no failed check, the coverage stated, and the
API requests per node bounded (the small version of ``benchmarks/scale.py``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.e2e.labrun import REPO, Lab, _env, diagnose_argv, lab_cli, lab_up

NODES = 12
LAB_URL = "http://198.51.100.10/"
REQUESTS_PER_NODE = 40
"""Bound on API requests per node per run; measured about 12 (diagnose) and 22 (validate)
per node at 30 nodes, and more per node on small clusters (fixed costs)."""



@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = lab_up(tmp_path_factory.mktemp("scale") / "lab", "healthy", NODES - 1)
    try:
        yield started
    finally:
        started.down()


def _requests(lab: Lab) -> int:
    done = lab_cli("status", "--json", "--state-dir", str(lab.state_dir))
    return sum(json.loads(done.stdout)["requests"].values())


@pytest.mark.parametrize("mode", ["diagnose", "validate"])
def test_healthy_lab_is_clean_with_linear_coverage(lab: Lab, tmp_path: Path, mode: str) -> None:
    reports = tmp_path / "reports"
    argv = diagnose_argv(lab.kubeconfig, reports, f"--external-url={LAB_URL}")
    argv[argv.index("diagnose")] = mode
    before = _requests(lab)
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    spent = _requests(lab) - before
    summary = json.loads((reports / "summary.json").read_text())
    failed = [t["nodeid"] for t in summary["tests"] if t["outcome"] in ("failed", "error")]
    assert failed == [], done.stdout[-3000:]
    assert done.returncode == 0, done.stdout[-3000:]
    coverage = summary["coverage"]
    assert (coverage["mode"], coverage["pairs"], coverage["total_pairs"]) == ("sampled", 36, 132)
    assert "coverage: 36 of 132 node pairs" in done.stdout
    assert 0 < spent <= REQUESTS_PER_NODE * NODES, f"{spent} API requests for {NODES} nodes"
