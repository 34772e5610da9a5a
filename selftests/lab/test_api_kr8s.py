"""kr8s (sync API), unmodified, against the lab API server."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

import kr8s
import pytest
from kr8s.objects import ConfigMap, Pod

from selftests.lab.apilab import VIEWER_TOKEN, ApiLab

T = TypeVar("T")


def deadline(fn: Callable[[], T], seconds: float = 10) -> T:
    """Run ``fn`` with a deadline: kr8s waits without bound in several places."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(fn).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def api(lab: ApiLab) -> Any:
    """A kr8s API client for the lab's admin."""
    return kr8s.api(kubeconfig=str(lab.kubeconfig()))


def test_create_get_list_patch_delete(api: Any, lab: ApiLab) -> None:
    cm = ConfigMap({"metadata": {"name": "settings", "labels": {"role": "cfg"}},
                    "data": {"a": "1"}}, api=api)
    deadline(cm.create)
    assert len(cm.metadata.uid) == 36
    assert int(cm.metadata.resourceVersion) > 1
    got = deadline(lambda: ConfigMap.get("settings", namespace="default", api=api))
    assert got.data["a"] == "1"
    listed = deadline(lambda: list(api.get("configmaps", label_selector={"role": "cfg"})))
    assert [c.name for c in listed] == ["settings"]
    deadline(lambda: got.patch({"data": {"b": "2"}}))
    assert lab.get("", "configmaps", "settings")["data"] == {"a": "1", "b": "2"}
    deadline(got.delete)
    assert not deadline(got.exists)


def test_list_pods_by_label(api: Any) -> None:
    pods = deadline(lambda: list(api.get("pods", namespace="default", label_selector="app=web")))
    assert sorted(p.name for p in pods) == ["web-1", "web-2"]
    assert {p.name: p.status.podIP for p in pods}["web-1"] == "10.244.1.5"


def test_watch_sees_changes(api: Any, lab: ApiLab) -> None:
    lab.call(lambda: lab.store.create(kr8s_resource("configmaps"), {
        "metadata": {"name": "watched", "namespace": "default"}, "data": {}}))
    seen: list[tuple[str, str]] = []

    def follow() -> None:
        for etype, obj in api.watch("configmaps", namespace="default",
                                    field_selector="metadata.name=watched"):
            seen.append((etype, obj.name))
            if etype == "ADDED":
                lab.call(lambda: lab.store.delete(kr8s_resource("configmaps"), "default",
                                                  "watched"))
            if etype == "DELETED":
                return

    deadline(follow)
    assert seen == [("ADDED", "watched"), ("DELETED", "watched")]


def kr8s_resource(plural: str) -> Any:
    """A core resource by plural."""
    from netdoctor.lab.api.resources import resource
    return resource("", plural)


def test_exec_exit_codes(api: Any) -> None:
    pod = deadline(lambda: Pod.get("web-1", namespace="default", api=api))
    ok = deadline(lambda: pod.exec(["sh", "-c", "echo out; echo err >&2"]))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"out\n", b"err\n")
    failed = deadline(lambda: pod.exec(["sh", "-c", "echo no; exit 3"], check=False))
    assert (failed.returncode, failed.stdout) == (3, b"no\n")
    # With check=True kr8s raises ExecError, wrapped in an ExceptionGroup by its sync layer.
    with pytest.raises(ExceptionGroup) as info:
        deadline(lambda: pod.exec(["sh", "-c", "exit 4"]))
    assert info.group_contains(kr8s.ExecError, match=r"exit code 4$", depth=None)


def test_logs(api: Any) -> None:
    pod = deadline(lambda: Pod.get("web-1", namespace="default", api=api))
    lines = deadline(lambda: list(pod.logs(tail_lines=2)))
    assert lines == ["web-1/main current line 4", "web-1/main current line 5"]


def test_unauthorized_and_forbidden(lab: ApiLab) -> None:
    bad = kr8s.api(kubeconfig=str(lab.kubeconfig("nope")))
    with pytest.raises(kr8s.ServerError) as err, \
            pytest.warns(UserWarning, match="Unauthorized"):
        deadline(lambda: list(bad.get("configmaps", namespace="default")))
    assert err.value.response is not None
    assert err.value.response.status_code == 401
    viewer = kr8s.api(kubeconfig=str(lab.kubeconfig(VIEWER_TOKEN)))
    with pytest.raises(kr8s.ServerError) as denied:
        deadline(lambda: list(viewer.get("pods", namespace="default")))
    assert str(denied.value) == ('pods is forbidden: User "jane" cannot list resource "pods" in '
                                 'API group "" in the namespace "default"')
