"""Runs at the same time on one cluster: two diagnose runs (one in its own namespace, both in
a shared ``--probe-namespace``) and a ``--cleanup-only`` while they are live. Each run is
correct, nothing of a live run is deleted, what a dead run left is; and a second repair
refuses while another holds the remediation Lease."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from netdoctor.cluster.leases import DURATION, LEASE_NAMESPACE, REMEDIATION_LEASE, lease_body
from netdoctor.plugin.remediate import EXIT_REFUSED
from selftests.e2e.interruptrun import netdoctor_objects, pods_by_run, wait_gone
from selftests.e2e.labrun import REPO, Lab, _env, diagnose_argv, run_diagnose

SHARED = "nd-shared"
DEAD = "dead01"
PROBES_UP = 60.0


def _kubectl(lab: Lab, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _create(lab: Lab, obj: dict[str, Any]) -> None:
    _kubectl(lab, "create", "--validate=false", "-f", "-", stdin=json.dumps(obj))


def _expired_lease(name: str, run_id: str) -> dict[str, Any]:
    return lease_body(name, run_id, datetime.now(UTC) - timedelta(seconds=10 * DURATION))


def _wait(what: str, check: Any, within: float = PROBES_UP) -> Any:
    import time

    end = time.monotonic() + within
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {within:g}s")


def test_two_runs_and_a_cleanup_at_once(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    _create(lab, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SHARED}})
    # What a run killed long ago left: its namespace and its expired Lease.
    _create(lab, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": f"netdoctor-{DEAD}", "labels": {"app.kubernetes.io/managed-by": "netdoctor",
                                                 "netdoctor.io/run-id": DEAD}}})
    _create(lab, _expired_lease(f"netdoctor-run-{DEAD}", DEAD))
    gate = tmp_path / "gate"
    env = {**_env(), "SELFTEST_GATE": str(gate)}
    runs = {name: subprocess.Popen(
        diagnose_argv(lab.kubeconfig, tmp_path / name, "-p", "selftests.e2e.gate", *extra),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, extra in (("a", [f"--probe-namespace={SHARED}"]),
                            ("b", [f"--probe-namespace={SHARED}"]),
                            ("c", []))}
    try:
        live = _wait("three runs with their probes", lambda: (
            found if len(found := pods_by_run(lab)) == 3 else None))
        cleanup = run_diagnose(lab.kubeconfig, tmp_path / "cleanup", "--cleanup-only")
        assert cleanup.returncode == 0, cleanup.output
        assert f"netdoctor-{DEAD}" in cleanup.output, cleanup.output
        for run_id in live:
            assert run_id not in cleanup.output, cleanup.output
        assert pods_by_run(lab).keys() == live.keys()  # nothing of a live run deleted
        assert f"lease {LEASE_NAMESPACE}/netdoctor-run-{DEAD}" not in " ".join(
            netdoctor_objects(lab))
    finally:
        gate.touch()
    outputs = {name: proc.communicate(timeout=180)[0] for name, proc in runs.items()}
    for name, proc in runs.items():
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        said = f"run {name}: exit {proc.returncode}\n{outputs[name][-3000:]}"
        assert proc.returncode == 0, said
        assert summary["verdict"] == "none", said
        assert not [t for t in summary["tests"] if t["outcome"] in ("failed", "error")], said
        others = set(live) - {summary["run_id"]}
        assert not any(other in outputs[name] for other in others), said
    assert wait_gone(lab) == []
    _kubectl(lab, "delete", "namespace", SHARED)


def test_a_second_repair_refuses_while_one_holds_the_lease(healthy_lab: Lab,
                                                           tmp_path: Path) -> None:
    held = lease_body(REMEDIATION_LEASE, "other1", datetime.now(UTC), role="remediation")
    _create(healthy_lab, held)
    try:
        run = run_diagnose(healthy_lab.kubeconfig, tmp_path / "r", "--remediate", "--yes",
                           "--force")
    finally:
        _kubectl(healthy_lab, "delete", "lease", "-n", LEASE_NAMESPACE, REMEDIATION_LEASE)
    block = run.summary.get("remediation") or {}
    assert run.returncode == EXIT_REFUSED, run.output[-3000:]
    assert block.get("mode") == "refused", block
    assert "another repair is running" in block["reason"]
    assert "other1@" in block["reason"]
    assert run.output.count("another repair is running") == 1, run.output[-3000:]
    assert wait_gone(healthy_lab) == []

