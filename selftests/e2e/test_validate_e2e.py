"""``pytest -m validate`` end to end: the healthy lab passes everything, every single fault is
caught on the right node and blamed on the right cause, and the incident's top cause is the
stray CNI config on worker-2.

Most faults share one lab (inject, validate, clear, wait until it validates clean again);
faults whose effects outlive clearing get a lab of their own.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.e2e.labrun import Lab, lab_up, probe_objects
from selftests.e2e.validate_expectations import (
    COREDNS,
    FAULT_CAUSES,
    OWN_LAB,
    PROBLEM_STATEMENT,
    WORKERS,
)
from selftests.e2e.validaterun import Validated, run_validate

SHOW_DEADLINE = 60.0  # seconds for a fault to show (restarts accumulate)
RECOVER_DEADLINE = 60.0  # seconds for the shared lab to validate clean after clearing


def coredns_nodes(lab: Lab) -> set[str]:
    """Nodes running CoreDNS pods now."""
    out = subprocess.run(["kubectl", "--kubeconfig", str(lab.kubeconfig), "get", "pods", "-n",
                          "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {p["spec"].get("nodeName", "") for p in json.loads(out)["items"]}


def wanted_nodes(lab: Lab, node: str | None) -> set[str] | None:
    """The nodes a fault's cause may name (``None``: cluster-wide)."""
    if node == COREDNS:
        return coredns_nodes(lab)
    if node == WORKERS:
        return {"worker-1", "worker-2"}
    return None if node is None else {node}


def names_node(test_id: str, node: str) -> bool:
    """The test's parametrize id names ``node``."""
    return any(s in test_id for s in (f"[{node}]", f"[{node}-", f"[{node}->", f"->{node}]"))


def leftovers(lab: Lab) -> list[str]:
    """Probe pods, namespaces, and echo Deployments/Services of any run."""
    found = probe_objects(lab.kubeconfig)
    for kind in ("deployments", "services"):
        out = subprocess.run(["kubectl", "--kubeconfig", str(lab.kubeconfig), "get", kind, "-A",
                              "-l", "app.kubernetes.io/managed-by=netdoctor", "-o", "name"],
                             capture_output=True, text=True, timeout=30, check=False).stdout
        found += out.split()
    return found


def validate_until(lab: Lab, report_dir: Path, cause: str) -> Validated:
    """Rerun until the top cause is ``cause`` or the deadline passes; the last run."""
    end = time.monotonic() + SHOW_DEADLINE
    while True:
        run = run_validate(lab, report_dir)
        if (run.top and run.top[0] == cause) or time.monotonic() > end:
            return run
        time.sleep(2)


def assert_caught(lab: Lab, fault: str, run: Validated) -> None:
    cause, node = FAULT_CAUSES[fault]
    nodes = wanted_nodes(lab, node)
    failed = run.outcomes("failed")
    assert failed, f"{fault}: no validate test failed\n{run.output[-3000:]}"
    if nodes is not None:
        assert any(names_node(t, n) for t in failed for n in nodes), (
            f"{fault}: no failing test names {sorted(nodes)}: {failed}")
    assert run.top is not None, f"{fault}: no root cause\n{run.output[-3000:]}"
    assert run.top[0] == cause, f"{fault}: top cause {run.top}, want {cause}\n" + json.dumps(
        run.summary.get("root_causes"), indent=1)[:3000]
    if nodes is not None:
        assert run.top[1] in nodes, f"{fault}: top cause on {run.top[1]}, want {sorted(nodes)}"
    assert leftovers(lab) == []


def test_healthy_validates_clean(healthy_lab: Lab, tmp_path: Path) -> None:
    run = run_validate(healthy_lab, tmp_path / "r")
    outcomes = {t["nodeid"]: t["outcome"] for t in run.summary.get("tests", [])}
    assert run.returncode == 0, run.output[-4000:]
    assert outcomes, run.output[-4000:]
    assert set(outcomes.values()) == {"passed"}, outcomes
    ids = " ".join(outcomes)
    for expected in ("test_pod_ping[worker-1->worker-2]", "test_pod_ping[worker-1->worker-1]",
                     "test_node_port[worker-2->control-plane]", "test_vxlan_peers[worker-2]",
                     "test_dns[worker-1-replica]", "test_egress_http[worker-1]"):
        assert expected in ids
    assert run.summary["root_causes"] == []
    assert run.summary["unexplained"] == []
    kinds = run.summary["matrix"]["kinds"]
    assert {"pod_ping", "pod_http", "node_port", "pod_mtu"} <= set(kinds), list(kinds)
    assert {c["outcome"] for k in kinds.values() for row in k["cells"].values()
            for c in row.values()} == {"passed"}
    assert "  pod ping " in run.output  # the terminal's compact matrix
    assert "root causes: none found" in run.output
    assert leftovers(healthy_lab) == []


def _recover(lab: Lab, report_dir: Path) -> None:
    end = time.monotonic() + RECOVER_DEADLINE
    while True:
        run = run_validate(lab, report_dir)
        if run.returncode == 0 or time.monotonic() > end:
            break
        time.sleep(2)
    assert run.returncode == 0, f"the lab did not recover: {run.outcomes('failed')}"


@pytest.mark.parametrize("fault", [f for f in FAULT_CAUSES if f not in OWN_LAB])
def test_fault_on_shared_lab(healthy_lab: Lab, fault: str, tmp_path: Path) -> None:
    healthy_lab.fault("inject", fault)
    try:
        run = validate_until(healthy_lab, tmp_path / "r", FAULT_CAUSES[fault][0])
    finally:
        healthy_lab.fault("clear", fault)
    assert_caught(healthy_lab, fault, run)
    _recover(healthy_lab, tmp_path / "recover")


@pytest.fixture
def fault_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    """A fresh 3-node lab running the scenario named by indirect parametrization."""
    lab = lab_up(tmp_path / "lab", request.param)
    yield lab
    lab.down()


@pytest.mark.parametrize("fault_lab", sorted(OWN_LAB), indirect=True)
def test_fault_on_own_lab(fault_lab: Lab, request: pytest.FixtureRequest, tmp_path: Path
                          ) -> None:
    fault = request.node.callspec.params["fault_lab"]
    run = validate_until(fault_lab, tmp_path / "r", FAULT_CAUSES[fault][0])
    assert_caught(fault_lab, fault, run)


@pytest.mark.parametrize("fault_lab", ["problem-statement"], indirect=True)
def test_problem_statement_real_cause(fault_lab: Lab, tmp_path: Path) -> None:
    run = validate_until(fault_lab, tmp_path / "r", PROBLEM_STATEMENT[0])
    assert run.top == PROBLEM_STATEMENT, json.dumps(run.summary.get("root_causes"), indent=1)
    failed = run.outcomes("failed")
    assert any("test_cni_config_wins[worker-2]" in t for t in failed), failed
    explains = run.summary["root_causes"][0]["explains"]
    assert {"pod_connectivity_failed", "coredns_crashloop"} <= set(explains)
    assert leftovers(fault_lab) == []
