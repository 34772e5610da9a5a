"""``pytest --remediate`` against labs: the incident planned but refused without --yes,
repaired with it, rolled back to exactly its state before, repaired again; dry-run and
refusal change nothing; every single fault's outcome as data.

Remediation runs the whole suite (diagnose and validate), as an operator does in a
maintenance window: every check that failed runs again after the repair and must pass, and a
``pytest -m validate`` run afterwards must pass every check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from selftests.e2e.labrun import REPO, Lab, _env, diagnose_argv, lab_up, run_diagnose
from selftests.e2e.repairrun import api_state, node_state, remediate, rollback
from selftests.e2e.validaterun import run_validate

# Fault -> score after `--remediate --force --yes`: every single fault is repaired.
SCORE_AFTER = MappingProxyType({
    "flannel-missing": 0, "coredns-crashloop": 0, "kube-proxy-crashloop": 0,
    "dns-upstream-timeout": 0, "service-no-endpoints": 0, "iptables-mixed-backend": 0,
    "cni-bridge-conflict": 0, "ip-forward-off": 0, "br-netfilter-off": 0,
    "cni-config-shadowed": 0,
})
# Fault -> hook whose step stays manual (skipped, with the command) by design: none today.
MANUAL: MappingProxyType[str, str] = MappingProxyType({})
# Fault -> the hooks that fix it and must have applied (their fix was manual before).
APPLIED = MappingProxyType({"coredns-crashloop": ("api-firewall-drop", "coredns-restart"),
                            "service-no-endpoints": ("service-selector",)})
# Faults the lab puts on CoreDNS's node, the control-plane node: repaired only when allowed.
ON_CONTROL_PLANE = frozenset({"br-netfilter-off", "coredns-crashloop"})
# The incident's causes a rollback brings back (the node files, chains and objects it
# restores); CoreDNS's own symptoms depend on where its new pods landed.
RESTORED_CAUSES = {("cni-config-shadowed", "worker-2"), ("flannel-missing", None),
                   ("netfilter-unmanageable", "worker-1"), ("netfilter-unmanageable", "worker-2")}


def assert_validates(lab: Lab, report_dir: Path) -> None:
    """``pytest -m validate`` passes every check (none failed, none flaky)."""
    done = run_validate(lab, report_dir)
    bad = [t for t in done.summary.get("tests", []) if t["outcome"] not in ("passed", "skipped")]
    assert done.summary.get("tests"), done.output[-1500:]
    assert not bad, [(t["nodeid"], t["outcome"]) for t in bad]
    assert done.returncode == 0, done.output[-1500:]


def snapshot(lab: Lab) -> dict[str, Any]:
    """Every object's spec/data outside netdoctor's own, and the nodes' CNI configs."""
    out = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "get",
                          "deployments,daemonsets,configmaps,services", "-A", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    items = json.loads(out.stdout)["items"]
    objs = {f"{o['kind']}/{o['metadata'].get('namespace')}/{o['metadata']['name']}":
            o.get("spec", o.get("data")) for o in items}
    confs = sorted(str(p.relative_to(lab.state_dir)) for p in lab.state_dir.glob(
        "nodes/*/etc/cni/net.d/*"))
    return {"objects": objs, "cni": confs}


@pytest.fixture
def incident(tmp_path: Path) -> Any:
    lab = lab_up(tmp_path / "lab", "problem-statement")
    yield lab
    lab.down()


def causes(run: Any) -> set[tuple[str, str | None]]:
    """(id, node) of a run's ranked root causes."""
    return {(c["id"], c["node"]) for c in run.summary.get("root_causes") or []}


def test_problem_statement_consent_repair_rollback_repair(incident: Lab, tmp_path: Path
                                                          ) -> None:
    nodes, objects = node_state(incident), api_state(incident)
    # Without --yes: the plan, written and in summary.json, and nothing changed.
    refused = remediate(incident, tmp_path / "r0")
    block = refused.summary["remediation"]
    assert block["mode"] == "refused", refused.output[-2000:]
    assert "without --yes" in block["reason"]
    assert refused.returncode == 6
    assert {(s["hook"], s["node"]) for s in block["plan"]} >= {
        ("stray-cni-config", "worker-2"), ("flannel-daemonset", None),
        ("foreign-nft-chain", "worker-1"), ("foreign-nft-chain", "worker-2")}
    assert all(s["cause"] for s in block["plan"])
    plan = json.loads((tmp_path / "r0" / "plan.json").read_text())
    assert plan["steps"] == block["plan"]
    assert "mv /host/etc/cni/net.d/00-bridge.conflist" in (tmp_path / "r0" / "plan.md").read_text()
    assert "netdoctor remediation plan" in refused.output
    assert (node_state(incident), api_state(incident)) == (nodes, objects)
    # With --yes: repaired (6 -> 0), every failed check passes again, validate passes.
    first = remediate(incident, tmp_path / "r1", "--yes")
    block = first.summary["remediation"]
    assert block["mode"] == "applied", first.output[-3000:]
    assert (block["score_before"], block["score_after"]) == (6, 0), first.output[-3000:]
    assert block["still_failing"] == [], block
    assert first.returncode == 0
    assert not [s for s in block["steps"] if s["status"] == "failed"]
    assert 0 < block["changes"] <= block["budget"]["max_changes"]
    assert "applied stray-cni-config node=worker-2" in (tmp_path / "r1" /
                                                        "remediation.log").read_text()
    events = [e for e in json.loads(subprocess.run(
        ["kubectl", f"--kubeconfig={incident.kubeconfig}", "get", "events", "-A", "-o", "json"],
        capture_output=True, text=True, timeout=30, check=True).stdout)["items"]
        if e.get("reason") == "NetdoctorRemediation"]
    assert {e["involvedObject"]["name"] for e in events} >= {"worker-2", "coredns"}
    assert_validates(incident, tmp_path / "v")
    # Rollback: every node file, chain, sysctl and object back as it was; the causes again.
    undone = rollback(incident, block["run_id"], tmp_path / "r1")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert node_state(incident) == nodes
    assert api_state(incident) == objects
    again = run_diagnose(incident.kubeconfig, tmp_path / "d")
    assert causes(again) >= RESTORED_CAUSES, again.summary.get("root_causes")
    assert "diagnose after the rollback: score" in undone.stdout
    # And a second repair repairs again.
    second = remediate(incident, tmp_path / "r2", "--yes", "--force")
    assert second.summary["remediation"]["score_after"] == 0, second.output[-3000:]
    assert second.returncode == 0


def test_dry_run_and_refusal_change_nothing(incident: Lab, tmp_path: Path) -> None:
    before = run_diagnose(incident.kubeconfig, tmp_path / "d1")
    state = snapshot(incident)
    dry = remediate(incident, tmp_path / "dry", "--dry-run")
    assert dry.summary["remediation"]["mode"] == "dry-run"
    assert {s["status"] for s in dry.summary["remediation"]["steps"]} <= {"planned", "skipped"}
    assert dry.summary["remediation"]["score_after"] is None
    assert snapshot(incident) == state
    after = run_diagnose(incident.kubeconfig, tmp_path / "d2")
    assert (after.summary["score"], after.present) == (before.summary["score"], before.present)
    # A partial verdict (raise the thresholds) without --force, no terminal: refused.
    refused = remediate(incident, tmp_path / "ref", "--yes", "--score-confirmed=7",
                        "--score-partial=2")
    assert refused.summary["remediation"]["mode"] == "refused"
    assert "pass --force" in refused.output
    assert refused.returncode == 6
    assert snapshot(incident) == state


def test_diagnose_alone_changes_nothing(healthy_lab: Lab, tmp_path: Path) -> None:
    state = snapshot(healthy_lab)
    done = subprocess.run(diagnose_argv(healthy_lab.kubeconfig, tmp_path / "d"), cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert snapshot(healthy_lab) == state
    assert not (tmp_path / "d" / "remediation.log").exists()


@pytest.mark.parametrize("fault", sorted(SCORE_AFTER))
def test_each_fault(fault: str, tmp_path: Path) -> None:
    lab = lab_up(tmp_path / "lab", fault)
    try:
        allow = ("--allow-control-plane",) if fault in ON_CONTROL_PLANE else ()
        done = remediate(lab, tmp_path / "r", "--force", "--yes", "--fix-selectors", *allow)
        block = done.summary.get("remediation", {})
        assert block.get("mode") == "applied", done.output[-2000:]
        assert block["score_before"] > 0
        assert block["score_after"] == SCORE_AFTER[fault], json.dumps(block, indent=1)
        assert not [s for s in block["steps"] if s["status"] == "failed"], block["steps"]
        assert block["still_failing"] == [], json.dumps(block, indent=1)
        assert done.returncode == 0, done.output[-2000:]
        assert_validates(lab, tmp_path / "v")
        if fault in MANUAL:
            manual = [s for s in block["steps"] if s["name"] == MANUAL[fault]]
            assert manual, block["steps"]
            assert all(s["status"] == "skipped" for s in manual)
            assert "kubectl" in manual[0]["detail"]
        if fault in APPLIED:
            applied = {s["name"] for s in block["steps"] if s["status"] == "applied"}
            assert set(APPLIED[fault]) <= applied, block["steps"]
            # Idempotent: once repaired, a second run finds nothing to plan.
            again = remediate(lab, tmp_path / "r2", "--force", "--yes")
            assert again.summary.get("remediation", {}).get("steps") == [], again.output[-2000:]
            assert again.returncode == 0
    finally:
        lab.down()
