"""The suite inside the cluster: deploy/job.yaml (and the CronJob's template) run in a lab
pod under the ServiceAccount of deploy/rbac/diagnose.yaml, with the token the kubelet mounts
and no kubeconfig, in a lab enforcing RBAC and Pod Security level baseline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import kr8s
import pytest

from netdoctor.lab.access import apply, load
from netdoctor.lab.api.rbac import read_audit
from netdoctor.lab.daemon import AUDIT_FILE
from selftests.e2e.labrun import LAB_EXTERNAL_DNS, REPO, Lab, lab_up, probe_objects
from selftests.e2e.validaterun import LAB_URL

IMAGE = "registry.example.com/netdoctor/netdoctor:0.1.0"
SA_USER = "system:serviceaccount:netdoctor:netdoctor"
JOB_DEADLINE = 120.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A healthy lab enforcing baseline whose registry serves netdoctor's own image."""
    up = lab_up(tmp_path_factory.mktemp("incluster") / "lab", "healthy", 2,
                "--pod-security=baseline", f"--image={IMAGE}")
    apply(up.state_dir, load(REPO / "deploy/rbac/diagnose.yaml"))
    yield up
    up.down()


def _for_the_lab(job: dict[str, Any]) -> dict[str, Any]:
    # The lab has no storage provisioner (reports go to an emptyDir it keeps on disk) and
    # no way out (lab-safe external targets through the options' environment twins).
    spec = job["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "reports", "emptyDir": {}}]
    spec["containers"][0]["env"] += [
        {"name": "NETDOCTOR_EXTERNAL_DNS", "value": LAB_EXTERNAL_DNS},
        {"name": "NETDOCTOR_EXTERNAL_URL", "value": LAB_URL}]
    return job


def _run_job(lab: Lab, job: dict[str, Any]) -> dict[str, Any]:
    (lab.state_dir / AUDIT_FILE).unlink(missing_ok=True)
    apply(lab.state_dir, [_for_the_lab(job)])
    api = kr8s.api(kubeconfig=str(lab.kubeconfig))
    name, end = job["metadata"]["name"], time.monotonic() + JOB_DEADLINE
    while time.monotonic() < end:
        found = next(iter(api.get("jobs", name, namespace="netdoctor")))
        conditions = [c["type"] for c in found.raw.get("status", {}).get("conditions") or []]
        if conditions:
            break
        time.sleep(0.5)
    pods = list(api.get("pods", namespace="netdoctor", label_selector=f"job-name={name}"))
    assert len(pods) == 1, pods
    pod_dir = next((lab.state_dir / "pods").glob(f"netdoctor_{pods[0].name}_*"))
    log = (pod_dir / "netdoctor" / "0.log").read_text()
    assert conditions == ["Complete"], log[-3000:]
    return {"summary": json.loads((pod_dir / "volumes/reports/summary.json").read_text()),
            "log": log}


def _assert_in_cluster(lab: Lab, done: dict[str, Any]) -> None:
    assert done["summary"]["score"] == 0, done["log"][-3000:]
    assert done["summary"]["tests"], done["log"][-3000:]
    decisions = read_audit(lab.state_dir / AUDIT_FILE, SA_USER)
    assert decisions, "the run did not use the pod's ServiceAccount token"
    assert all(ok for _, ok in decisions), [a for a, ok in decisions if not ok]
    assert probe_objects(lab.kubeconfig) == []


def test_job_runs_in_cluster(lab: Lab) -> None:
    job = next(d for d in load(REPO / "deploy/job.yaml") if d["kind"] == "Job")
    _assert_in_cluster(lab, _run_job(lab, job))


def test_cronjob_template_runs_in_cluster(lab: Lab) -> None:
    cron = next(d for d in load(REPO / "deploy/cronjob.yaml") if d["kind"] == "CronJob")
    apply(lab.state_dir, [cron])  # served as is; a run is a Job made from its template
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "netdoctor-now", "namespace": "netdoctor"},
           "spec": cron["spec"]["jobTemplate"]["spec"]}
    _assert_in_cluster(lab, _run_job(lab, job))
