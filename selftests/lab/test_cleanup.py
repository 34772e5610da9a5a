"""A run removes its probe pods and echo Deployments in one request by its own label, one
request per object when the credentials lack that verb, and never touches another run's
objects or deletes twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from netdoctor.cluster import echo as echo_mod
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Target, connect
from netdoctor.lab.api.requestcount import REQUESTS
from netdoctor.lab.api.resources import resource
from selftests.lab.apilab import ADMIN_TOKEN, OLD_MANIFEST_TOKEN, ApiLab, namespace

PODS, NAMESPACES = resource("", "pods"), resource("", "namespaces")
SHARED = "nd-shared"  # a --probe-namespace two runs share
MINE, OTHER = "a1a1a1", "b2b2b2"


def _pod(run_id: str, node: str) -> dict[str, object]:
    return pods.probe_pod_spec(node=node, namespace=SHARED, image="busybox:1.36",
                               run_id=run_id)


@pytest.fixture
def shared(lab: ApiLab) -> Iterator[ApiLab]:
    """Three pods of this run (two recorded, one whose create was never recorded) and one
    of another run, in a namespace the runs were given."""
    lab.call(lambda: lab.store.create(NAMESPACES, namespace(SHARED)))
    for run_id, node in ((MINE, "worker-1"), (MINE, "worker-2"), (MINE, "worker-3"),
                         (OTHER, "worker-1")):
        lab.call(lambda r=run_id, n=node: lab.store.create(PODS, _pod(r, n)))
    yield lab
    for obj in lab.call(lambda: lab.store.list(PODS, SHARED)):
        lab.call(lambda o=obj: lab.store.remove(PODS, SHARED, o["metadata"]["name"]))
    lab.call(lambda: lab.store.remove(NAMESPACES, "", SHARED))


def _remove(lab: ApiLab, token: str) -> tuple[pods.ProbeSet, list[str], Counter[str]]:
    names = [str(_pod(MINE, n)["metadata"]["name"]) for n in ("worker-1", "worker-2")]
    probes = pods.ProbeSet(SHARED, MINE, created=[("pod", n) for n in names])
    before = Counter(lab.app[REQUESTS])

    async def go() -> list[str]:
        cluster = await connect(Target(lab.kubeconfig(token), None))
        return await pods.remove(cluster, probes, wait=5.0, budget=2.0)

    problems = asyncio.run(go())
    return probes, problems, Counter(lab.app[REQUESTS]) - before


def _left(lab: ApiLab) -> list[str]:
    return sorted(str(o["metadata"]["labels"][pods.RUN_ID]) for o in
                  lab.call(lambda: lab.store.list(PODS, SHARED)))


def test_one_request_removes_every_pod_of_the_run(shared: ApiLab) -> None:
    probes, problems, sent = _remove(shared, ADMIN_TOKEN)
    assert problems == []
    assert probes.unremoved == []
    assert _left(shared) == [OTHER]  # the other run's pod stays
    assert sent["deletecollection pods"] == 1
    assert sent["delete pods"] == 0  # neither per pod nor a second time for the stray


def test_without_the_verb_each_pod_is_deleted(shared: ApiLab) -> None:
    probes, problems, sent = _remove(shared, OLD_MANIFEST_TOKEN)
    assert problems == []
    assert probes.unremoved == []
    assert _left(shared) == [OTHER]
    assert sent["deletecollection pods"] >= 1  # refused (kr8s asks again on 403), then
    assert sent["delete pods"] == 3  # one by one: two recorded, one found by its label


DEPLOYMENTS = resource("apps", "deployments")


@pytest.fixture
def echoes(shared: ApiLab) -> Iterator[ApiLab]:
    """The echo Deployments of this run on three nodes, and one of another run."""
    for run_id, node in ((MINE, "worker-1"), (MINE, "worker-2"), (MINE, "worker-3"),
                         (OTHER, "worker-1")):
        spec = echo_mod.echo_deployment_spec(node=node, namespace=SHARED, run_id=run_id)
        shared.call(lambda s=spec: shared.store.create(DEPLOYMENTS, s))
    yield shared
    for obj in shared.call(lambda: shared.store.list(DEPLOYMENTS, SHARED)):
        shared.call(lambda o=obj: shared.store.remove(DEPLOYMENTS, SHARED,
                                                      o["metadata"]["name"]))


def _remove_echo(lab: ApiLab, token: str) -> tuple[list[str], Counter[str]]:
    echo = echo_mod.Echo(SHARED, MINE, created=[
        ("apps/v1/deployments", str(echo_mod.echo_deployment_spec(
            node=n, namespace=SHARED, run_id=MINE)["metadata"]["name"]))
        for n in ("worker-1", "worker-2", "worker-3")])
    before = Counter(lab.app[REQUESTS])

    async def go() -> list[str]:
        cluster = await connect(Target(lab.kubeconfig(token), None))
        return await echo_mod.remove(cluster, echo)

    problems = asyncio.run(go())
    return problems, Counter(lab.app[REQUESTS]) - before


def _deployments_left(lab: ApiLab) -> list[str]:
    return sorted(str(o["metadata"]["labels"][pods.RUN_ID]) for o in
                  lab.call(lambda: lab.store.list(DEPLOYMENTS, SHARED)))


@pytest.mark.parametrize("token", [ADMIN_TOKEN, OLD_MANIFEST_TOKEN])
def test_echo_deployments_go_in_one_request_or_one_each(echoes: ApiLab, token: str) -> None:
    problems, sent = _remove_echo(echoes, token)
    assert problems == []
    assert _deployments_left(echoes) == [OTHER]
    assert sent["deletecollection deployments"] >= 1
    assert sent["delete deployments"] == (0 if token == ADMIN_TOKEN else 3)
