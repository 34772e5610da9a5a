"""The suite's own echo workload: one agnhost ``netexec`` Deployment pinned to each node and
one NodePort Service in front of them, created in the run's namespace and labelled with the
run id.

One pinned Deployment per node (rather than one Deployment with anti-affinity) makes the
placement certain: every node has a backend, so same-node and cross-node paths are both
measured, and the NodePort reaches a local and remote backend from every node.

Example:
    >>> spec = echo_deployment_spec(node="w1", namespace="nd", run_id="abc123")
    >>> spec["spec"]["template"]["spec"]["nodeName"], spec["metadata"]["name"]
    ('w1', 'echo-w1')
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netdoctor.cluster.client import Cluster, status_code
from netdoctor.cluster.images import Placement, image_pull_problem
from netdoctor.cluster.leftovers import delete_collection, send_delete
from netdoctor.cluster.probes import (
    NETWORK_GRACE,
    NETWORK_SETUP_REASONS,
    NODE_LABEL,
    RUN_ID,
    labels,
    object_events,
    pod_problem,
    pod_ready,
    poll_pauses,
    run_name,
)

ECHO_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53"
ECHO_PORT = 8080
SERVICE_PORT = 80
APP_LABEL = "app.kubernetes.io/name"
APP = "netdoctor-echo"
SERVICE = "echo"
ENDPOINTS_WAIT = 5.0
"""Seconds to wait for the Service's endpoints to list the Ready echo pods."""
KUBE_PROXY_SETTLE = 1.0
"""Seconds kube-proxy may take to program a change of endpoints: its ``minSyncPeriod``,
1 s by default, rate-limits a burst of changes (each echo pod becoming Ready is one)."""


def echo_labels(run_id: str) -> dict[str, str]:
    """The Service selector: the echo app of this run."""
    return {APP_LABEL: APP, RUN_ID: run_id}


def echo_deployment_spec(*, node: str, namespace: str, run_id: str,
                         image: str = ECHO_IMAGE,
                         placement: Placement | None = None) -> dict[str, Any]:
    """A one-replica echo Deployment pinned to ``node`` (tolerates every taint)."""
    pod_labels = {**labels(run_id), **echo_labels(run_id), NODE_LABEL: node[:63]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": run_name(namespace, run_id, "echo", node), "namespace": namespace,
                     "labels": {**labels(run_id), **echo_labels(run_id)}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {**echo_labels(run_id), NODE_LABEL: node[:63]}},
            "template": {"metadata": {"labels": pod_labels}, "spec": (
                placement or Placement()).apply({
                "nodeName": node,
                "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "containers": [{
                    "name": "echo", "image": image, "imagePullPolicy": "IfNotPresent",
                    "args": ["netexec", f"--http-port={ECHO_PORT}"],
                    "ports": [{"containerPort": ECHO_PORT, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": ECHO_PORT},
                                       "periodSeconds": 1},
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }],
            })},
        },
    }


def echo_service_spec(*, namespace: str, run_id: str) -> dict[str, Any]:
    """The NodePort Service selecting every echo pod of the run."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": run_name(namespace, run_id, SERVICE), "namespace": namespace,
                     "labels": labels(run_id)},
        "spec": {"type": "NodePort", "selector": echo_labels(run_id),
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": ECHO_PORT,
                            "protocol": "TCP"}]},
    }


@dataclass(frozen=True)
class EchoPod:
    """One echo backend: its node, address, and readiness."""

    node: str
    name: str
    ip: str
    ready: bool
    problem: str = ""
    events: tuple[str, ...] = ()

    @property
    def network_setup_failed(self) -> bool:
        """Its Events say the node could not set up its pod network (as for a probe pod)."""
        return any(r in line for line in self.events for r in NETWORK_SETUP_REASONS)


@dataclass
class Echo:
    """The deployed echo workload (what was created, for removal newest first)."""

    namespace: str
    run_id: str
    image: str = ECHO_IMAGE
    placement: Placement = field(default_factory=Placement)
    cluster_ip: str = ""
    node_port: int = 0
    pods: dict[str, EchoPod] = field(default_factory=dict)
    created: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    endpoints_at: float = 0.0
    """Loop time at which the Service's EndpointSlices listed every Ready echo pod (or the
    wait for that gave up); 0 before :func:`wait_endpoints`."""

    def dns_name(self, domain: str) -> str:
        """The Service's DNS name in the cluster domain ``domain`` (from resolv.conf)."""
        return f"{run_name(self.namespace, self.run_id, SERVICE)}.{self.namespace}.svc.{domain}"


async def _create(cluster: Cluster, echo: Echo, path: str, version: str,
                  body: Mapping[str, Any]) -> dict[str, Any]:
    resp = await cluster.request("POST", path, namespace=echo.namespace, version=version,
                                 body=body, what=f"create {path} {body['metadata']['name']}")
    echo.created.append((f"{version}/{path}", str(body["metadata"]["name"])))
    data: dict[str, Any] = resp.json()
    return data


async def deploy(cluster: Cluster, echo: Echo, nodes: Sequence[str], timeout: float,
                 network_grace: float = NETWORK_GRACE) -> Echo:
    """Create the Service and one Deployment per node; wait (bounded) for the pods."""
    svc = await _create(cluster, echo, "services", "v1",
                        echo_service_spec(namespace=echo.namespace, run_id=echo.run_id))
    echo.cluster_ip = str(svc.get("spec", {}).get("clusterIP", ""))
    echo.node_port = int((svc.get("spec", {}).get("ports") or [{}])[0].get("nodePort") or 0)
    await asyncio.gather(*(_create(cluster, echo, "deployments", "apps/v1",
                                   echo_deployment_spec(node=n, namespace=echo.namespace,
                                                        run_id=echo.run_id, image=echo.image,
                                                        placement=echo.placement))
                           for n in nodes))
    await wait_pods(cluster, echo, nodes, timeout, network_grace)
    return echo


async def wait_endpoints(cluster: Cluster, echo: Echo, timeout: float = ENDPOINTS_WAIT) -> None:
    """Poll (bounded) until the Service's EndpointSlices list every Ready echo pod as ready.

    A pod is Ready before the endpoint controller publishes it and before kube-proxy has
    programmed it; measuring the Service right after the pods came up finds a Service
    with missing endpoints ("connection refused" on a healthy cluster). What is left after
    this wait is kube-proxy's own delay (see :data:`KUBE_PROXY_SETTLE`).
    """
    loop = asyncio.get_running_loop()
    want = {p.ip for p in echo.pods.values() if p.ready and p.ip}
    end = loop.time() + timeout
    pauses = poll_pauses()
    while want and loop.time() < end:
        slices = await cluster.list("endpointslices", namespace=echo.namespace,
                                    selector="kubernetes.io/service-name="
                                             f"{run_name(echo.namespace, echo.run_id, SERVICE)}")
        ready = {a for s in slices for e in s.get("endpoints") or []
                 if (e.get("conditions") or {}).get("ready", True)
                 for a in e.get("addresses") or []}
        if want <= ready:
            break
        await asyncio.sleep(next(pauses))
    echo.endpoints_at = loop.time()


async def wait_pods(cluster: Cluster, echo: Echo, nodes: Sequence[str], timeout: float,
                    network_grace: float) -> None:
    """Poll until each node's echo pod is Ready, gives up on its network, or time runs out."""
    started = time.monotonic()
    selector = ",".join(f"{k}={v}" for k, v in echo_labels(echo.run_id).items())
    by_node: dict[str, dict[str, Any]] = {}
    given_up: set[str] = set()
    pauses = poll_pauses()
    while time.monotonic() - started < timeout:
        listed = await cluster.list("pods", namespace=echo.namespace, selector=selector)
        by_node = {o["spec"].get("nodeName", ""): o for o in listed
                   if not o["metadata"].get("deletionTimestamp")}
        pending = [n for n in nodes if not (n in by_node and pod_ready(by_node[n]))]
        if time.monotonic() - started > network_grace:
            for n in pending:
                if n in by_node and n not in given_up and await _hopeless(cluster, echo,
                                                                          by_node[n]):
                    given_up.add(n)
        if not set(pending) - given_up:
            break
        await asyncio.sleep(next(pauses))
    for n in nodes:
        obj = by_node.get(n)
        if obj is None:
            echo.pods[n] = EchoPod(n, "", "", False, "no echo pod was created on the node")
            continue
        name = obj["metadata"]["name"]
        ready = pod_ready(obj)
        events = () if ready else await object_events(cluster, echo.namespace, name)
        pull = image_pull_problem(obj)
        problem = f"image problem on {n}: {pull}" if pull else pod_problem(obj)
        echo.pods[n] = EchoPod(n, name, str(obj.get("status", {}).get("podIP") or ""), ready,
                               "" if ready else problem, events)


async def _hopeless(cluster: Cluster, echo: Echo, obj: Mapping[str, Any]) -> bool:
    # Past the grace period, a pod that runs with an address but fails readiness is
    # measured as it is (its paths show why), and one whose network cannot be set up
    # will not get one until someone fixes the node.
    status = obj.get("status", {})
    if (status.get("podIP") and status.get("phase") == "Running") or image_pull_problem(obj):
        return True
    lines = await object_events(cluster, echo.namespace, obj["metadata"]["name"])
    return any(r in ln for ln in lines for r in NETWORK_SETUP_REASONS)


async def remove(cluster: Cluster, echo: Echo) -> list[str]:
    """Delete what :func:`deploy` created, newest first; return what could not be deleted."""
    problems: list[str] = []

    async def delete(kind: str, name: str) -> None:
        version, _, plural = kind.rpartition("/")
        try:
            await send_delete(cluster, f"{plural}/{name}", namespace=echo.namespace,
                              version=version, what=f"delete {plural} {name}")
        except Exception as exc:
            if status_code(exc) != 404:
                problems.append(f"{plural} {echo.namespace}/{name}: {exc}")

    # Newest kind first. The Deployments (one per node) in one request by the run's label,
    # asked once as each single delete is; side by side, one each, when that verb is refused.
    selector = f"{RUN_ID}={echo.run_id}"
    for kind, group in itertools.groupby(reversed(echo.created), key=lambda c: c[0]):
        names = [name for _, name in group]
        version, _, plural = kind.rpartition("/")
        if plural == "deployments" and len(names) > 1 and await delete_collection(
                cluster, plural, echo.namespace, selector, problems, budget=0.0,
                version=version) is not None:
            continue
        await asyncio.gather(*(delete(kind, name) for name in names))
    echo.created.clear()
    return problems
