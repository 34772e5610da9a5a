"""The lab store's writes: a status write changes only the status, an in-process mutate
stores the writer's copy without sharing it with anyone, and a no-op write is no event."""

from __future__ import annotations

import asyncio
from typing import Any

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store

NAMESPACES = resource("", "namespaces")
PODS = resource("", "pods")


def _store_with_pod() -> Store:
    store = Store()
    store.create(NAMESPACES, {"metadata": {"name": "a"}})
    store.create(PODS, {"metadata": {"name": "p", "namespace": "a", "labels": {"x": "1"}},
                        "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
                        "status": {"phase": "Pending"}})
    return store


def test_a_status_mutate_keeps_everything_but_the_status() -> None:
    store = _store_with_pod()

    def change(obj: dict[str, Any]) -> None:
        obj["status"]["phase"] = "Running"
        obj["spec"]["nodeName"] = "elsewhere"  # not the status: not written
        obj["metadata"]["labels"]["x"] = "2"
        obj["extra"] = True

    assert store.mutate(PODS, "a", "p", change, subresource="status") is True
    pod = store.get(PODS, "a", "p")
    assert pod["status"] == {"phase": "Running"}
    assert pod["spec"]["nodeName"] == "n1"
    assert pod["metadata"]["labels"] == {"x": "1"}
    assert "extra" not in pod


def test_a_spec_mutate_keeps_the_stored_status() -> None:
    store = _store_with_pod()

    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"]["x"] = "2"
        obj["status"]["phase"] = "Failed"  # pods have a status subresource: not written

    store.mutate(PODS, "a", "p", change)
    pod = store.get(PODS, "a", "p")
    assert pod["metadata"]["labels"] == {"x": "2"}
    assert pod["status"] == {"phase": "Pending"}


def test_the_stored_object_shares_nothing_with_events_or_answers() -> None:
    store = _store_with_pod()
    queue = store.subscribe(PODS)
    store.mutate(PODS, "a", "p", lambda o: o["status"].update(phase="Running"),
                 subresource="status")
    _, _, event_obj = queue.get_nowait()
    answer = store.replace(PODS, store.get(PODS, "a", "p"), subresource="status")
    event_obj["status"]["phase"] = "changed by a subscriber"
    answer["spec"]["nodeName"] = "changed by a caller"
    pod = store.get(PODS, "a", "p")
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] == "n1"


def test_a_mutate_that_changes_nothing_is_no_event_and_keeps_the_version() -> None:
    store = _store_with_pod()
    before = store.get(PODS, "a", "p")["metadata"]["resourceVersion"]
    queue: asyncio.Queue[Any] = store.subscribe(PODS)
    store.mutate(PODS, "a", "p", lambda o: o["status"].update(phase="Pending"),
                 subresource="status")
    assert queue.empty()
    assert store.get(PODS, "a", "p")["metadata"]["resourceVersion"] == before


def test_mutating_an_absent_object_says_so() -> None:
    assert _store_with_pod().mutate(PODS, "a", "gone", lambda o: None) is False


def test_a_field_the_writer_put_in_is_stored_as_a_copy() -> None:
    # A kubelet builds a status from container states it keeps changing; the stored pod
    # must change only through the next write.
    store = _store_with_pod()
    states: dict[str, Any] = {"phase": "Running", "containerStatuses": [{"restartCount": 0}]}
    store.mutate(PODS, "a", "p", lambda o: o.__setitem__("status", states),
                 subresource="status")
    states["containerStatuses"][0]["restartCount"] = 5
    spec = {"containers": [{"name": "c"}], "nodeName": "n2"}
    store.mutate(PODS, "a", "p", lambda o: o.__setitem__("spec", spec))
    spec["nodeName"] = "n3"
    pod = store.get(PODS, "a", "p")
    assert pod["status"]["containerStatuses"] == [{"restartCount": 0}]
    assert pod["spec"]["nodeName"] == "n2"
