"""The patch formats, on the shapes kubectl and controllers send."""

from __future__ import annotations

import pytest

from netdoctor.lab.api.patch import apply_patch, json_patch, merge_patch, strategic_merge
from netdoctor.lab.api.store import ApiError

POD_SPEC = {"containers": [
    {"name": "a", "image": "x:1", "env": [{"name": "E", "value": "1"}],
     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
    {"name": "b", "image": "y:1"}], "tolerations": [{"key": "t"}]}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None}, "l": [3]}) == {
        "a": {"c": 2}, "l": [3]}


def test_strategic_merge_by_key_and_atomic_lists() -> None:
    patch = {"containers": [{"name": "a", "env": [{"name": "F", "value": "2"}],
                             "ports": [{"containerPort": 80, "name": "http"}]}],
             "tolerations": [{"key": "u"}]}
    out = strategic_merge(POD_SPEC, patch)
    a = out["containers"][0]
    assert [e["name"] for e in a["env"]] == ["E", "F"]
    assert a["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]
    assert [c["name"] for c in out["containers"]] == ["a", "b"]
    assert out["tolerations"] == [{"key": "u"}]
    assert POD_SPEC["containers"][0]["env"] == [{"name": "E", "value": "1"}]  # input untouched


def test_strategic_merge_directives_from_kubectl_apply() -> None:
    patch = {"$setElementOrder/containers": [{"name": "a"}],
             "containers": [{"name": "b", "$patch": "delete"}],
             "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
             "metadata": {"finalizers": ["f2"], "$deleteFromPrimitiveList/finalizers": ["f1"]}}
    target = {**POD_SPEC, "strategy": {"type": "RollingUpdate", "rollingUpdate": {}},
              "metadata": {"finalizers": ["f1"]}}
    out = strategic_merge(target, patch)
    assert [c["name"] for c in out["containers"]] == ["a"]
    assert out["strategy"] == {"type": "Recreate"}
    assert out["metadata"]["finalizers"] == ["f2"]
    assert not any(k.startswith("$") for k in out)


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a/b": "1"}}, "items": [1, 2]}
    ops = [{"op": "add", "path": "/items/-", "value": 3},
           {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
           {"op": "move", "from": "/items/0", "path": "/first"},
           {"op": "copy", "from": "/first", "path": "/again"},
           {"op": "remove", "path": "/items/0"},
           {"op": "test", "path": "/items", "value": [3]}]
    assert json_patch(doc, ops) == {"metadata": {"labels": {"a/b": "2"}}, "items": [3],
                                    "first": 1, "again": 1}
    with pytest.raises(ApiError) as failed:
        json_patch(doc, [{"op": "test", "path": "/items", "value": []}])
    assert failed.value.code == 422
    with pytest.raises(ApiError) as missing:
        json_patch(doc, [{"op": "replace", "path": "/nope/x", "value": 1}])
    assert missing.value.code == 400


def test_apply_patch_refuses_server_side_apply() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/apply-patch+yaml", {}, {})
    assert err.value.code == 415
