"""Every cluster shape the lab plays, as a user would meet it: healthy, the whole suite
(diagnose and validate) is clean, with the signals that cannot apply null and explained; in
the incident (or its analogue on that shape), every applicable signal shows, the real cause
ranks first, and a dry-run remediation plans nothing the shape forbids."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from netdoctor.lab import profiles
from selftests.e2e.labrun import REPO, Lab, LabDidNotStart, Run, run_diagnose, suite_argv
from selftests.e2e.validaterun import LAB_URL

SETTLE_DEADLINE = 60.0
NOT_APPLICABLE: dict[str, set[str]] = {"cilium-kpr": {"kube_proxy_restarts"}}
"""Signals each shape cannot show (kube-proxy replaced by the CNI); every other applies."""
QUIET_IN_INCIDENT: dict[str, set[str]] = {"openshift-dns": {"service_endpoints_missing"}}
"""Applicable signals the incident cannot raise on a shape: OpenShift's DNS is a DaemonSet,
so the replicas on the healthy nodes keep dns-default's endpoints when CoreDNS's node breaks
(the suite must then say absent, not present)."""
INCIDENT_CAUSE = ("cni-config-shadowed", "worker-2")
"""The incident's real cause on every shape: the stray CNI config on CoreDNS's node."""


LAB_TIMEOUT = 180.0


def _lab(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "netdoctor.cli", "lab", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _all(procs: Sequence[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    """Wait for every process (each on the same deadline); (exit status, stderr) each."""
    done = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=LAB_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        except BaseException:  # Ctrl-C: end the lab command first, its lab is removed next
            proc.terminate()
            proc.wait(timeout=30)
            raise
        done.append((proc.returncode, err))
    return done


_DOWNS: list[subprocess.Popen[str]] = []


@pytest.fixture(scope="module", autouse=True)
def _labs_removed() -> Iterator[None]:
    """Every lab removed before the module ends."""
    yield
    _all(_DOWNS)
    _DOWNS.clear()


@pytest.fixture(scope="module", params=profiles.names())
def labs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, Lab, Lab]]:
    """The profile's healthy lab and its incident lab (one after the other: the incident
    waits for its faults to show, which load would slow down), removed in the background."""
    name: str = request.param
    # The previous profile's labs are gone first: a lab coming up while another goes down
    # could miss its faults' settling deadline ("coredns-crashloop to show").
    _all(_DOWNS)
    _DOWNS.clear()
    base = tmp_path_factory.mktemp(name)
    dirs = {scenario: base / scenario for scenario in ("healthy", "problem-statement")}
    try:
        for scenario, d in dirs.items():
            [(code, err)] = _all([_lab("up", "--state-dir", str(d), "--profile", name,
                                       "--scenario", scenario, "--workers", "2")])
            if code != 0:
                raise LabDidNotStart(f"lab up --profile {name} --scenario {scenario}: "
                                     f"{err.strip()[-800:]}")
        yield name, Lab(dirs["healthy"]), Lab(dirs["problem-statement"])
    finally:
        _DOWNS.extend(_lab("down", "--state-dir", str(d)) for d in dirs.values())


def nulls(summary: dict[str, Any]) -> set[str]:
    """Signals reported as not applicable."""
    return {k for k, v in summary["signals"].items() if v is None}


# A user's workload scaled to zero on purpose, with its Service: not a fault.
SCALED_TO_ZERO = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "parked"}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "batch", "namespace": "parked"},
     "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "batch"}},
              "template": {"metadata": {"labels": {"app": "batch"}}, "spec": {"containers": [
                  {"name": "batch", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                   "args": ["netexec", "--http-port=8080"]}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "batch", "namespace": "parked"},
     "spec": {"selector": {"app": "batch"}, "ports": [{"port": 80, "targetPort": 8080}]}}]}


def create(lab: Lab, objects: dict[str, Any]) -> None:
    """Create ``objects`` in the lab as a user would (kubectl)."""
    done = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "create",
                           "--validate=false", "-f", "-"], input=json.dumps(objects),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_healthy_shape_is_clean(labs: tuple[str, Lab, Lab], tmp_path: Path) -> None:
    profile, healthy, _ = labs
    create(healthy, SCALED_TO_ZERO)
    report = tmp_path / "r"
    run = run_diagnose(healthy.kubeconfig, report,
                       argv=suite_argv(healthy.kubeconfig, report, f"--external-url={LAB_URL}"))
    bad = {t["nodeid"]: t["outcome"] for t in run.summary.get("tests", [])
           if t["outcome"] in ("failed", "error")}
    assert run.returncode == 0, f"{bad}\n{run.output[-4000:]}"
    assert not bad
    assert (run.summary["score"], run.summary["verdict"]) == (0, "none")
    assert nulls(run.summary) == NOT_APPLICABLE.get(profile, set())
    assert set(run.summary["signal_reasons"]) == nulls(run.summary)
    assert all(run.summary["signal_reasons"].values())
    assert run.summary["applicable"] == 6 - len(nulls(run.summary))
    assert run.summary.get("root_causes") == []
    assert run.summary.get("unexplained") == []  # no failed or flaky check left over
    passed = [t for t in run.summary["tests"] if t["outcome"] == "passed"]
    assert any("test_pod_to_pod" in t["nodeid"] for t in passed)
    assert any("test_dns[" in t["nodeid"] for t in passed)
    print(f"{profile}: healthy suite {run.seconds:.1f}s, applicable "
          f"{run.summary['applicable']}, reasons {run.summary['signal_reasons']}")


def forbidden_steps(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Planned steps this cluster's shape forbids (as the run itself found the shape)."""
    cluster = summary["cluster"]
    steps = [s for s in (summary.get("remediation") or {}).get("steps", [])
             if s["status"] == "planned"]
    bad = []
    for s in steps:
        if s["name"] == "flannel-daemonset" and (cluster["cni"] != "flannel"
                                                 or (cluster["cni_agent"] is None
                                                 and not _flannel_installed(summary))):
            bad.append(s)
        if s["name"] == "stray-cni-config" and "multus" in s["detail"]:
            bad.append(s)
        if s["name"] == "pods-outside-podcidr" and not cluster["ipam_from_podcidr"]:
            bad.append(s)
    return bad


def _flannel_installed(summary: dict[str, Any]) -> bool:
    # The Flannel DaemonSet install leaves its ConfigMap behind; the embedded one has none.
    return "kube-flannel-cfg" in summary["cluster"].get("cni_reason", "")


def test_incident_on_each_shape(labs: tuple[str, Lab, Lab], tmp_path: Path) -> None:
    profile, _, incident = labs
    end = time.monotonic() + SETTLE_DEADLINE
    while True:
        run: Run = run_diagnose(incident.kubeconfig, tmp_path / "r", "--remediate",
                                "--dry-run", "--non-interactive")
        applicable = {k for k, v in run.summary.get("signals", {}).items() if v is not None}
        expected = applicable - QUIET_IN_INCIDENT.get(profile, set())
        if (expected and run.present == expected) or time.monotonic() > end:
            break
        time.sleep(3)
    assert run.present == expected, (f"raised {sorted(run.present)}, expected "
                                     f"{sorted(expected)}\n{run.output[-4000:]}")
    assert nulls(run.summary) == NOT_APPLICABLE.get(profile, set())
    causes = run.summary.get("root_causes") or []
    assert causes, run.output[-3000:]
    assert (causes[0]["id"], causes[0]["node"]) == INCIDENT_CAUSE, causes[:3]
    assert run.summary["remediation"]["mode"] == "dry-run"
    assert forbidden_steps(run.summary) == [], run.summary["remediation"]
    print(f"{profile}: incident score {run.summary['score']}/{run.summary['applicable']}, "
          f"top cause {causes[0]['id']}@{causes[0]['node']}, {run.seconds:.1f}s")
