"""``pytest --remediate`` against labs: the incident repaired, dry-run and refusal change
nothing, a second run plans nothing, and every single fault's outcome as data.

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

from selftests.e2e.labrun import (
    REPO,
    Lab,
    Run,
    _env,
    diagnose_argv,
    lab_up,
    run_diagnose,
    suite_argv,
)
from selftests.e2e.validaterun import LAB_URL, run_validate

FALLBACK = "198.51.100.53"  # the lab's second resolver (a documentation address)

# Fault -> score after `--remediate --force`: every single fault is repaired.
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

REMEDIATE_TIMEOUT = 300.0


def remediate(lab: Lab, report_dir: Path, *extra: str) -> Run:
    """``pytest --remediate`` (every check) as an operator runs it in a pipeline (no TTY)."""
    argv = suite_argv(lab.kubeconfig, report_dir, f"--external-url={LAB_URL}", "--remediate",
                      "--non-interactive", f"--dns-fallback={FALLBACK}", *extra)
    return run_diagnose(lab.kubeconfig, report_dir, argv=argv, timeout=REMEDIATE_TIMEOUT)


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


def test_problem_statement_repaired_and_idempotent(incident: Lab, tmp_path: Path) -> None:
    first = remediate(incident, tmp_path / "r1")
    block = first.summary["remediation"]
    assert block["mode"] == "applied", first.output[-2000:]
    assert block["score_before"] == 6
    assert block["score_after"] == 0, first.output[-3000:]
    assert first.returncode == 0
    assert not [s for s in block["steps"] if s["status"] == "failed"]
    log = (tmp_path / "r1" / "remediation.log").read_text()
    assert "applied stray-cni-config node=worker-2" in log
    # Every check that failed (validate's too) ran again and passed.
    assert block["still_failing"] == [], block
    assert any(t["nodeid"].startswith("tests/validate/") and t["outcome"] == "failed"
               for t in first.summary["tests"])
    # Fresh diagnose and validate runs pass every check; a second remediation plans nothing.
    after = run_diagnose(incident.kubeconfig, tmp_path / "d")
    assert after.summary["score"] == 0, after.output[-2000:]
    assert all(t["outcome"] in ("passed", "skipped") for t in after.summary["tests"])
    assert_validates(incident, tmp_path / "v")
    again = remediate(incident, tmp_path / "r2", "--force")
    assert again.summary["remediation"]["steps"] == []
    assert again.returncode == 0


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
    refused = remediate(incident, tmp_path / "ref", "--score-confirmed=7", "--score-partial=2")
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
        done = remediate(lab, tmp_path / "r", "--force")
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
            again = remediate(lab, tmp_path / "r2", "--force")
            assert again.summary.get("remediation", {}).get("steps") == [], again.output[-2000:]
            assert again.returncode == 0
    finally:
        lab.down()
