"""The guards of ``pytest --remediate`` against one lab: a PodDisruptionBudget that allows
no disruption keeps its pod (reported, nothing deleted, mode ``blocked``); the control-plane
node is not changed without ``--allow-control-plane``; the change budget counts node changes
and stops the run before the first change over it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.e2e.labrun import Lab, lab_cli, lab_up
from selftests.e2e.repairrun import in_node, kubectl_json, remediate

WEB = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: worker-2}
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.47
        args: [netexec, --http-port=8080]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = lab_up(tmp_path_factory.mktemp("guards") / "lab", "healthy")
    yield lab
    lab.down()


def web_pods(lab: Lab) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kubectl_json(lab, "pods", "-n", "shop")["items"]
                  if not p["metadata"].get("deletionTimestamp"))


def test_a_budget_that_allows_no_disruption_keeps_the_pod(lab: Lab, tmp_path: Path) -> None:
    created = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "create",
                              "--validate=false", "-f", "-"], input=WEB, capture_output=True,
                             text=True, timeout=30, check=False)
    assert created.returncode == 0, created.stderr
    for _ in range(100):  # the disruption controller has seen the Ready pod
        pdb = kubectl_json(lab, "pdb", "-n", "shop", "web")
        if pdb.get("status", {}).get("currentHealthy") == 1:
            break
        time.sleep(0.2)
    assert pdb["status"]["disruptionsAllowed"] == 0, pdb
    before = web_pods(lab)
    lab.fault("inject", "cni-bridge-conflict")  # on worker-2: its pods are evicted
    done = remediate(lab, tmp_path / "r", "--yes", "--force")
    block = done.summary["remediation"]
    assert block["mode"] == "blocked", done.output[-3000:]
    assert "nothing was deleted" in block["reason"]
    [step] = [s for s in block["steps"] if s["name"] == "cni0-address"]
    assert step["status"] == "failed"
    assert "Cannot evict pod as it would violate the pod's disruption budget." in step["detail"]
    assert done.returncode == 1
    assert web_pods(lab) == before


def test_control_plane_and_the_change_budget(lab: Lab, tmp_path: Path) -> None:
    for node in ("control-plane", "worker-1"):
        out = lab_cli("fault", "inject", "ip-forward-off", "--node", node, "--state-dir",
                      str(lab.state_dir))
        assert out.returncode == 0, out.stderr
    forward = {n: in_node(lab, n, "sysctl", "-n", "net.ipv4.ip_forward").strip()
               for n in ("control-plane", "worker-1")}
    assert forward == {"control-plane": "0", "worker-1": "0"}
    # The control-plane node is refused; worker-1 needs 2 changes, 1 allowed per node.
    capped = remediate(lab, tmp_path / "r1", "--yes", "--force", "--max-changes-per-node=1")
    block = capped.summary["remediation"]
    assert block["mode"] == "over-budget", capped.output[-3000:]
    steps = {(s["name"], s["node"]): s for s in block["steps"]}
    assert "--allow-control-plane" in steps[("kernel-sysctls", "control-plane")]["detail"]
    assert "over budget: needs 2 change(s) on worker-1, 0 of 1 per node" in \
        steps[("kernel-sysctls", "worker-1")]["detail"]
    assert block["changes"] == 0
    assert capped.returncode == 1
    assert {n: in_node(lab, n, "sysctl", "-n", "net.ipv4.ip_forward").strip()
            for n in forward} == forward
    # Allowed and within budget: both repaired.
    fixed = remediate(lab, tmp_path / "r2", "--yes", "--force", "--allow-control-plane")
    assert fixed.summary["remediation"]["mode"] == "applied", fixed.output[-3000:]
    assert {n: in_node(lab, n, "sysctl", "-n", "net.ipv4.ip_forward").strip()
            for n in forward} == {"control-plane": "1", "worker-1": "1"}
