"""Images: the lab's registry refuses unknown images as a kubelet shows it, and the suite
reports a probe image that cannot be pulled as an image problem per node, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import kr8s

from selftests.e2e.labrun import Lab, probe_objects, run_diagnose

MISSING_IMAGE = "nicolaka/netshoot:v0.0-absent"
IMAGE_DEADLINE = 30.0


def test_unknown_image_fails_to_pull_like_a_kubelet(healthy_lab: Lab) -> None:
    api = kr8s.api(kubeconfig=str(healthy_lab.kubeconfig))
    pod = kr8s.objects.Pod({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "absent-image", "namespace": "default"},
                            "spec": {"nodeName": "worker-1", "containers": [
                                {"name": "c", "image": MISSING_IMAGE}]}}, api=api)
    pod.create()
    try:
        end, reasons = time.monotonic() + 15, set()
        while time.monotonic() < end and "ImagePullBackOff" not in reasons:
            pod.refresh()
            for cs in pod.raw.get("status", {}).get("containerStatuses") or []:
                reasons.add(((cs.get("state") or {}).get("waiting") or {}).get("reason"))
            time.sleep(0.2)
        assert "ImagePullBackOff" in reasons, reasons
        messages = [f"{e.raw['type']} {e.raw['reason']}: {e.raw['message']}"
                    for e in api.get("events", namespace="default")
                    if e.raw["involvedObject"]["name"] == "absent-image"]
        ref = "docker.io/nicolaka/netshoot:v0.0-absent"
        assert f'Normal Pulling: Pulling image "{MISSING_IMAGE}"' in messages, messages
        assert any(m.startswith(f'Warning Failed: Failed to pull image "{MISSING_IMAGE}": '
                                f"rpc error: code = NotFound") and ref in m for m in messages)
        assert "Warning Failed: Error: ErrImagePull" in messages, messages
        assert f'Normal BackOff: Back-off pulling image "{MISSING_IMAGE}"' in messages
        assert "Warning Failed: Error: ImagePullBackOff" in messages, messages
        assert pod.raw["status"]["phase"] == "Pending"
    finally:
        pod.delete(grace_period=0)


def test_probe_image_problem_reported_per_node(healthy_lab: Lab, tmp_path: Path) -> None:
    run = run_diagnose(healthy_lab.kubeconfig, tmp_path / "r", f"--probe-image={MISSING_IMAGE}")
    assert run.returncode != 0, run.output[-2000:]
    # Well within the setup timeout (120 s): the pull failure is seen, not waited out.
    assert run.seconds < IMAGE_DEADLINE + 10, run.seconds
    tests = run.summary["tests"]
    on_nodes = [t for t in tests if "[" in t["nodeid"] and t["outcome"] != "passed"]
    assert on_nodes, tests
    for node in ("control-plane", "worker-1", "worker-2"):
        assert f"image problem on {node}" in run.output, run.output[-3000:]
    # Not measured is not a network finding: no check failed, no signal raised.
    assert not [t for t in tests if t["outcome"] == "failed"], run.output[-3000:]
    assert not any(run.summary["signals"].values()), run.summary["signals"]
    assert probe_objects(healthy_lab.kubeconfig) == []
