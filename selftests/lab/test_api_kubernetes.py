"""The official ``kubernetes`` client (strict models), unmodified, against the lab."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from netdoctor.lab.api.resources import resource
from selftests.lab.apilab import VIEWER_TOKEN, ApiLab


@pytest.fixture
def api_client(lab: ApiLab) -> Any:
    """An ApiClient for the lab's admin, with a request timeout."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(lab.kubeconfig()), client_configuration=cfg)
    return client.ApiClient(cfg)


def test_list_pods_with_label_selector(api_client: Any) -> None:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        "default", label_selector="app=web", _request_timeout=10)
    assert sorted(p.metadata.name for p in pods.items) == ["web-1", "web-2"]
    crashing = next(p for p in pods.items if p.metadata.name == "web-2")
    assert crashing.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    assert crashing.status.container_statuses[0].restart_count == 4
    assert int(pods.metadata.resource_version) > 0


def test_read_node_and_namespaces(api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    node = core.read_node("worker-1", _request_timeout=10)
    assert node.status.node_info.kubelet_version == "v1.31.4"
    names = [n.metadata.name for n in core.list_namespace(_request_timeout=10).items]
    assert {"default", "kube-system"} <= set(names)


def test_strategic_merge_patch_like_rollout_restart(api_client: Any, lab: ApiLab) -> None:
    apps = client.AppsV1Api(api_client)
    before = lab.get("apps", "deployments", "api")
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}
    patched = apps.patch_namespaced_deployment("api", "default", body, _request_timeout=10)
    assert patched.spec.template.metadata.annotations == {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
    assert patched.metadata.generation == before["metadata"]["generation"] + 1
    # Strategic merge: containers merge by name, env by name.
    env_patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "api", "env": [{"name": "B", "value": "2"}]}]}}}}
    merged = apps.patch_namespaced_deployment("api", "default", env_patch, _request_timeout=10)
    container = merged.spec.template.spec.containers[0]
    assert container.image == "busybox:1.36"
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("B", "2")]


def test_watch_stream_with_timeout(api_client: Any, lab: ApiLab) -> None:
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map("default", _request_timeout=10).metadata.resource_version
    configmaps = resource("", "configmaps")
    lab.call(lambda: lab.store.create(configmaps, {
        "metadata": {"name": "w1", "namespace": "default"}, "data": {"k": "v"}}))
    lab.call(lambda: lab.store.delete(configmaps, "default", "w1"))
    start = time.monotonic()
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1,
        _request_timeout=10)]
    assert events == [("ADDED", "w1"), ("DELETED", "w1")]
    assert 0.9 < time.monotonic() - start < 5


def test_exec_stream_returncode(api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    resp = stream(core.connect_get_namespaced_pod_exec, "web-1", "default",
                  command=["sh", "-c", "read x; echo got $x; echo err >&2; exit 3"],
                  stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.write_stdin("hello\n")
    out, err = "", ""
    deadline = time.monotonic() + 10
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        out += resp.read_stdout() if resp.peek_stdout() else ""
        err += resp.read_stderr() if resp.peek_stderr() else ""
    assert not resp.is_open()
    assert (out, err, resp.returncode) == ("got hello\n", "err\n", 3)


def test_read_pod_log(api_client: Any) -> None:
    text = client.CoreV1Api(api_client).read_namespaced_pod_log(
        "web-2", "default", previous=True, tail_lines=1, _request_timeout=10)
    assert text == "web-2/main previous line 5\n"


def test_not_found_and_forbidden(api_client: Any, lab: ApiLab) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("ghost", "default", _request_timeout=10)
    assert missing.value.status == 404
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(lab.kubeconfig(VIEWER_TOKEN)),
                            client_configuration=cfg)
    viewer = client.CoreV1Api(client.ApiClient(cfg))
    with pytest.raises(ApiException) as denied:
        viewer.delete_namespaced_pod("web-1", "default", _request_timeout=10)
    assert denied.value.status == 403
    status = json.loads(denied.value.body)
    assert (status["reason"], status["details"]) == (
        "Forbidden", {"name": "web-1", "group": "", "kind": "pods"})
    assert status["message"] == ('pods "web-1" is forbidden: User "jane" cannot delete resource '
                                 '"pods" in API group "" in the namespace "default"')


def test_leases_as_coordination_v1(api_client: Any) -> None:
    """Leases are served as kube-apiserver serves coordination.k8s.io/v1: strict models
    round-trip, a stale resourceVersion is a 409 (the lab's admission, not installed here,
    refuses a non-positive duration: ``test_lease_validation``)."""
    coord = client.CoordinationV1Api(api_client)
    body = client.V1Lease(metadata=client.V1ObjectMeta(name="holder", labels={"a": "b"}),
                          spec=client.V1LeaseSpec(
                              holder_identity="run-1", lease_duration_seconds=30,
                              renew_time="2026-01-01T00:00:00.000000Z", lease_transitions=0))
    made = coord.create_namespaced_lease("default", body, _request_timeout=10)
    assert made.spec.holder_identity == "run-1"
    assert made.spec.renew_time.year == 2026
    listed = coord.list_namespaced_lease("default", label_selector="a=b", _request_timeout=10)
    assert [x.metadata.name for x in listed.items] == ["holder"]
    made.spec.holder_identity = "run-2"
    renewed = coord.replace_namespaced_lease("holder", "default", made, _request_timeout=10)
    assert renewed.metadata.resource_version != made.metadata.resource_version
    with pytest.raises(ApiException) as stale:
        coord.replace_namespaced_lease("holder", "default", made, _request_timeout=10)
    assert stale.value.status == 409
    coord.delete_namespaced_lease("holder", "default", _request_timeout=10)


@pytest.mark.parametrize(("field", "value"), [("leaseDurationSeconds", 0),
                                              ("leaseTransitions", -1)])
def test_lease_validation(field: str, value: int) -> None:
    from netdoctor.lab.api.defaults import Defaulter
    from netdoctor.lab.api.store import ApiError, Store

    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "x", "namespace": "default"}, "spec": {field: value}}
    with pytest.raises(ApiError) as invalid:
        Defaulter(Store())(resource("coordination.k8s.io", "leases"), lease, None)
    assert invalid.value.code == 422
    assert f"spec.{field}" in invalid.value.message
