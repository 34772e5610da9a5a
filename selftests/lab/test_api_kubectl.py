"""kubectl 1.32, unmodified, against the lab API server."""

from __future__ import annotations

import json
import re
import time

from selftests.lab.apilab import ApiLab
from selftests.lab.conftest import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: shop
        image: busybox:1.36
        env: [{name: MODE, value: %s}]
"""


def test_get_pods_wide_prints_kubectl_columns(kubectl: Kubectl) -> None:
    done = kubectl("get", "pods", "-o", "wide")
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                "NOMINATED", "NODE", "READINESS", "GATES"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["web-1"][1:4] == ["1/1", "Running", "0"]
    assert rows["web-1"][5:7] == ["10.244.1.5", "worker-1"]
    assert rows["web-2"][1:3] == ["0/1", "CrashLoopBackOff"]
    # Seeded with the last restart 90 s before the session started.
    assert rows["web-2"][3] == "4"
    assert rows["web-2"][5] == "ago)"
    assert 90 <= int(rows["web-2"][4].strip("(s")) < 120
    assert rows["db-0"][1:3] == ["0/1", "ContainerCreating"]
    assert rows["db-0"][5:7] == ["<none>", "worker-1"]


def test_get_nodes_and_deployments(kubectl: Kubectl) -> None:
    nodes = kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert nodes[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert nodes[1].split()[:3] == ["worker-1", "Ready", "worker"]
    assert "192.168.4.11" in nodes[1].split()
    deploy = kubectl("get", "deploy", "api").stdout.splitlines()
    assert deploy[1].split()[:4] == ["api", "2/2", "2", "2"]


def test_get_json_and_label_selector(kubectl: Kubectl) -> None:
    done = kubectl("get", "pods", "-l", "app=web", "-o", "json")
    body = json.loads(done.stdout)
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["web-1", "web-2"]
    assert body["items"][0]["status"]["phase"] == "Running"


def test_describe_pod_lists_events(kubectl: Kubectl) -> None:
    done = kubectl("describe", "pod", "web-1")
    assert done.stderr == ""
    assert re.search(r"^Name: +web-1$", done.stdout, re.M)
    assert re.search(r"^Status: +Running$", done.stdout, re.M)
    assert "10.244.1.5" in done.stdout
    assert re.search(r"Normal +Pulled .* kubelet +image pulled", done.stdout)


def test_logs(kubectl: Kubectl) -> None:
    assert kubectl("logs", "web-1", "--tail=2").stdout == (
        "web-1/main current line 4\nweb-1/main current line 5\n")
    assert "previous line 1" in kubectl("logs", "web-2", "-p").stdout


def test_exec_exit_code_and_stdin(kubectl: Kubectl) -> None:
    done = kubectl("exec", "web-1", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                   check=False)
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert done.stderr.startswith("err\n")
    piped = kubectl("exec", "-i", "web-1", "--", "cat", stdin="hi\n")
    assert piped.stdout == "hi\n"


def test_exec_into_pending_pod_fails_cleanly(kubectl: Kubectl) -> None:
    done = kubectl("exec", "db-0", "--", "true", check=False)
    assert done.returncode == 1
    assert "is waiting to start: ContainerCreating" in done.stderr


def test_apply_twice_then_rollout_restart(kubectl: Kubectl, lab: ApiLab) -> None:
    first = kubectl("apply", "--validate=false", "-f", "-", stdin=DEPLOYMENT % "one")
    assert first.stdout.strip() == "deployment.apps/shop created"
    second = kubectl("apply", "--validate=false", "-f", "-", stdin=DEPLOYMENT % "two")
    assert second.stdout.strip() == "deployment.apps/shop configured"
    assert second.stderr == ""
    stored = lab.get("apps", "deployments", "shop")
    assert stored["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODE", "value": "two"}]
    assert stored["metadata"]["generation"] == 2
    kubectl("rollout", "restart", "deployment/shop")
    annotations = lab.get("apps", "deployments", "shop")["spec"]["template"]["metadata"][
        "annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert kubectl("delete", "deployment", "shop").stdout.strip() == (
        'deployment.apps "shop" deleted')
    assert kubectl("get", "deployment", "shop", check=False).returncode == 1


def test_label_and_delete_pod(kubectl: Kubectl, lab: ApiLab) -> None:
    kubectl("run", "tmp", "--image=busybox:1.36", "--restart=Never")
    kubectl("label", "pod", "tmp", "tier=test")
    assert lab.get("", "pods", "tmp")["metadata"]["labels"]["tier"] == "test"
    assert "tmp" in kubectl("get", "pods", "-l", "tier=test", "-o", "name").stdout
    # Not bound to a node, so the pod goes at once.
    start = time.monotonic()
    kubectl("delete", "pod", "tmp", "--wait=false")
    assert time.monotonic() - start < 10
    assert kubectl("get", "pod", "tmp", check=False).returncode == 1


def test_unauthorized_and_forbidden(kubectl: Kubectl) -> None:
    bad = kubectl("get", "pods", token="nope", check=False)
    assert bad.returncode == 1
    assert "You must be logged in to the server" in bad.stderr
    forbidden = kubectl("get", "pods", token="viewer-token", check=False)
    assert forbidden.returncode == 1
    assert ('pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the '
            'namespace "default"') in forbidden.stderr
    allowed = kubectl("get", "pod", "web-1", token="viewer-token")
    assert allowed.stdout.splitlines()[1].split()[0] == "web-1"


def test_discovery_is_aggregated(kubectl: Kubectl) -> None:
    done = kubectl("get", "pods", "-v=6")
    paths = [line.split()[line.split().index("GET") + 1].split("?")[0].split(":", 2)[2]
             for line in done.stderr.splitlines() if " GET " in line]
    # Aggregated discovery: one request per root, no per-group fallback requests.
    assert [p.split("/", 1)[1] for p in paths] == [
        "api", "apis", "api/v1/namespaces/default/pods"]
    resources = kubectl("api-resources").stdout
    assert re.search(r"^deployments +deploy +apps/v1 +true +Deployment$", resources, re.M)
