"""deploy/job.yaml and deploy/cronjob.yaml: pinned image, the RBAC manifest's ServiceAccount,
reports on a volume, a pod that Pod Security level baseline admits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netdoctor.lab.api.podsecurity import violations
from netdoctor.plugin.options import parse_image

REPO = Path(__file__).resolve().parents[2]


def _pod_spec(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / name).read_text()) if d]
    workload = next(d for d in docs if d["kind"] in ("Job", "CronJob"))
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    assert {d["kind"] for d in docs} == {"PersistentVolumeClaim", workload["kind"]}
    return dict(spec["template"]["spec"])


@pytest.mark.parametrize("name", ["job.yaml", "cronjob.yaml"])
def test_in_cluster_manifest(name: str) -> None:
    spec = _pod_spec(name)
    container = spec["containers"][0]
    assert parse_image(container["image"]) == container["image"]  # pinned, never latest
    assert spec["serviceAccountName"] == "netdoctor"
    assert spec["restartPolicy"] == "Never"
    assert "diagnose" in container["command"]  # what deploy/rbac/diagnose.yaml allows
    assert "--report-dir=/reports" in container["command"]
    assert {"name": "reports", "mountPath": "/reports"} in container["volumeMounts"]
    assert violations("baseline", spec) == []
