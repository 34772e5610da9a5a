"""Probe pods: one per Ready node, pinned with ``nodeName``, built by one spec factory.

Every node that is Ready gets a probe, the control plane included: the probe tolerates every
taint (as a CNI DaemonSet does), because system pods such as CoreDNS often run there and its pod
network matters as much as a worker's. Cordoned nodes are probed too (``nodeName`` bypasses the
scheduler). NotReady nodes are not probed; they are listed in the probe report.

Every object is labelled ``app.kubernetes.io/managed-by=netdoctor`` and
``netdoctor.io/run-id=<id>``; leftovers of other runs are found by those labels.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kr8s.asyncio.objects as k8s

from netdoctor.cluster.client import Cluster, bounded
from netdoctor.cluster.exec import ExecTarget
from netdoctor.cluster.images import IMAGE_GRACE, Placement, image_pull_problem
from netdoctor.cluster.leases import MANAGED_BY as MANAGED_BY  # the labels of every object
from netdoctor.cluster.leases import MANAGER as MANAGER
from netdoctor.cluster.leases import ROLE
from netdoctor.cluster.leases import RUN_ID as RUN_ID
from netdoctor.cluster.leftovers import (
    CLEANUP_BUDGET,
    Leftover,
    delete_collection,
    delete_object,
)
from netdoctor.cluster.profile import NodeInfo

NODE_LABEL = "netdoctor.io/node"
CONTAINER = "probe"
# A safety net for runs killed with SIGKILL: the kubelet ends a forgotten probe after this.
ACTIVE_DEADLINE_SECONDS = 3600
NETWORK_SETUP_REASONS = ("FailedCreatePodSandBox", "FailedSetupNetwork", "NetworkNotReady")
# Seconds a probe may keep failing its network setup before its node counts as broken.
NETWORK_GRACE = 8.0
POLL_FIRST, POLL_GROWTH, POLL_MAX = 0.1, 1.5, 1.0
"""Seconds between lists of the run's pods while waiting: 0.1 s at first, growing to 1 s."""


def poll_pauses() -> Iterator[float]:
    """The pauses of a polling loop: short at first (most objects are ready within a
    second), then at most :data:`POLL_MAX`, so a long wait costs the API one list a second.

    Example:
        >>> pauses = poll_pauses()
        >>> [round(next(pauses), 3) for _ in range(7)]
        [0.1, 0.15, 0.225, 0.338, 0.506, 0.759, 1.0]
    """
    pause = POLL_FIRST
    while True:
        yield pause
        pause = min(pause * POLL_GROWTH, POLL_MAX)


def probe_name(node: str, kind: str = "probe") -> str:
    """A readable pod name for the ``kind`` pod on ``node`` (hashed when too long)."""
    base = re.sub(r"[^a-z0-9-]", "-", f"{kind}-{node}".lower()).strip("-")
    if len(base) <= 63:
        return base
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return f"{base[:54].rstrip('-')}-{digest}"


def own_namespace(namespace: str, run_id: str) -> bool:
    """Whether ``namespace`` is one the run made for itself (else it is shared with other
    runs, ``--probe-namespace``)."""
    return namespace in (f"netdoctor-{run_id}", f"netdoctor-{run_id}-repair")


def run_name(namespace: str, run_id: str, kind: str, node: str | None = None) -> str:
    """The name of a run's object: ``kind-node`` in the run's own namespace; in a shared
    one the run id is part of it, so two runs there never collide (or exec into, or
    measure, each other's pods).

    Example:
        >>> run_name("netdoctor-abc123", "abc123", "probe", "w1")
        'probe-w1'
        >>> run_name("shared", "abc123", "probe", "w1")
        'probe-abc123-w1'
    """
    prefix = kind if own_namespace(namespace, run_id) else f"{kind}-{run_id}"
    return probe_name(node, prefix) if node is not None else prefix


def labels(run_id: str) -> dict[str, str]:
    """Labels every object of a run carries."""
    return {MANAGED_BY: MANAGER, RUN_ID: run_id}


POD_SECURITY_LABEL = "pod-security.kubernetes.io/enforce"


def namespace_spec(name: str, run_id: str, pod_security: str = "privileged") -> dict[str, Any]:
    """The run's own probe namespace, labelled with the Pod Security level its pods need
    (``privileged`` for node probes, ``baseline`` for pod probes alone)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**labels(run_id),
                                                  POD_SECURITY_LABEL: pod_security}}}


HOST_ROOT = "/host"  # where node-level pods see the node's filesystem
def probe_pod_spec(*, node: str, namespace: str, image: str, run_id: str,
                   node_level: bool = False, writable: bool = False,
                   placement: Placement | None = None) -> dict[str, Any]:
    """The one spec every pod of a run is built from.

    Pod probes live in the pod network. ``node_level`` pods (node probes, and with
    ``writable`` the remediation node agent) share the node's network namespace, run
    privileged and see the node's root at ``/host`` (read-only unless ``writable``).

    Example:
        >>> spec = probe_pod_spec(node="w1", namespace="nd", image="img:1", run_id="abc123")
        >>> spec["spec"]["nodeName"], spec["metadata"]["labels"]["netdoctor.io/run-id"]
        ('w1', 'abc123')
        >>> agent = probe_pod_spec(node="w1", namespace="netdoctor-a-repair", image="img:1",
        ...                        run_id="a", node_level=True, writable=True)
        >>> agent["metadata"]["name"], agent["spec"]["hostNetwork"]
        ('nodeagent-w1', True)
    """
    kind = ("nodeagent" if writable else "nodeprobe") if node_level else "probe"
    container: dict[str, Any] = {
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(ACTIVE_DEADLINE_SECONDS)],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    spec: dict[str, Any] = {
        "nodeName": node,
        "tolerations": [{"operator": "Exists"}],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
    }
    (placement or Placement()).apply(spec)
    if node_level:
        spec.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet",
                    volumes=[{"name": "host", "hostPath": {"path": "/"}}])
        container["securityContext"] = {"privileged": True}
        container["volumeMounts"] = [{"name": "host", "mountPath": HOST_ROOT,
                                      "readOnly": not writable}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": run_name(namespace, run_id, kind, node), "namespace": namespace,
                     "labels": {**labels(run_id), NODE_LABEL: node[:63],
                                ROLE: kind}},
        "spec": spec,
    }


@dataclass(frozen=True)
class ProbeFailure:
    """A probe pod that did not become Ready, with what its Events and status said."""

    node: str
    pod: str
    reason: str
    events: tuple[str, ...]

    @property
    def image_problem(self) -> bool:
        """The node could not pull the probe image (a setup problem, not a network one)."""
        return self.reason.startswith("image problem")

    @property
    def network_setup_failed(self) -> bool:
        """The pod network could not be set up on the node (a finding, not a setup error)."""
        return any(r in line for line in self.events for r in NETWORK_SETUP_REASONS)


@dataclass
class ProbeSet:
    """The probes of one run and what became of them."""

    namespace: str
    run_id: str
    ready: dict[str, ExecTarget] = field(default_factory=dict)
    failed: dict[str, ProbeFailure] = field(default_factory=dict)
    skipped_nodes: dict[str, str] = field(default_factory=dict)
    created: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) in creation order; removed in reverse."""
    wait_seconds: float = 0.0
    placement: Placement = field(default_factory=Placement)
    pod_security: str = "privileged"
    """The Pod Security level the run's own namespace is labelled with."""
    unremoved: list[Leftover] = field(default_factory=list)
    """Objects cleanup could not delete (set by :func:`remove`)."""


def pod_ready(obj: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    conds = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def pod_problem(obj: Mapping[str, Any]) -> str:
    """Why a pod is not ready, from its phase and container states."""
    status = obj.get("status", {})
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"{waiting.get('reason', 'Waiting')}: {waiting.get('message', '')}".strip(": ")
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return f"terminated: {term.get('reason', '')} exit {term.get('exitCode')}"
    phase = status.get("phase", "Pending")
    return f"{phase}{': ' + status['message'] if status.get('message') else ''}"


def event_lines(events: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """``Type Reason: message (xN)`` per Event, oldest first."""
    ordered = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return tuple(f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}"
                 + (f" (x{e['count']})" if (e.get("count") or 1) > 1 else "")
                 for e in ordered)


async def object_events(cluster: Cluster, namespace: str, name: str) -> tuple[str, ...]:
    """Event lines about one object (empty when Events cannot be read)."""
    return (await namespace_events(cluster, namespace, [name])).get(name, ())


async def namespace_events(cluster: Cluster, namespace: str, names: Sequence[str]
                           ) -> dict[str, tuple[str, ...]]:
    """Event lines about each of ``names``, from one list of the namespace's Events (one
    request however many objects are asked about; empty when Events cannot be read)."""
    if not names:
        return {}
    try:
        events = await cluster.list("events", namespace=namespace)
    except Exception:  # Events are evidence only; their absence must not hide the finding
        return {}
    return {name: event_lines([e for e in events
                               if (e.get("involvedObject") or {}).get("name") == name])
            for name in names}


async def ensure_namespace(cluster: Cluster, probes: ProbeSet, create: bool) -> None:
    """Create the run's namespace (only when it is ours to create)."""
    if not create:
        return
    ns = k8s.Namespace(namespace_spec(probes.namespace, probes.run_id, probes.pod_security),
                       api=cluster.api)
    await bounded(ns.create(), cluster.timeout, f"create namespace {probes.namespace}")
    probes.created.append(("namespace", probes.namespace))


async def admitted(cluster: Cluster, namespace: str, spec: Mapping[str, Any]) -> None:
    """Ask the API server to admit ``spec`` without creating it (``dryRun=All``).

    One request before creating a batch: a refusal (RBAC, Pod Security Admission, a
    policy webhook) comes back once, with the server's words, instead of once per pod.

    Raises:
        kr8s.ServerError: The server refused the pod.
    """
    await cluster.request("POST", "pods", namespace=namespace, params={"dryRun": "All"},
                          body=dict(spec), what=f"admission of pod {spec['metadata']['name']}")


async def create_pods(cluster: Cluster, probes: ProbeSet,
                      specs: Sequence[Mapping[str, Any]]) -> None:
    """Create ``specs`` in the run's namespace, concurrently, after one dry run of the first
    (a refusal then comes back once); each is recorded as created when the API took it."""
    if specs:
        await admitted(cluster, probes.namespace, specs[0])

    async def create(spec: Mapping[str, Any]) -> None:
        name = spec["metadata"]["name"]
        await cluster.request("POST", "pods", namespace=probes.namespace, body=dict(spec),
                              what=f"create pod {probes.namespace}/{name}")
        probes.created.append(("pod", name))

    await asyncio.gather(*(create(s) for s in specs))


async def create_probes(
    cluster: Cluster, probes: ProbeSet, nodes: Sequence[NodeInfo], image: str,
) -> list[dict[str, Any]]:
    """Create one probe per Ready node, concurrently; return their specs."""
    for node in nodes:
        refused = probes.placement.refuses(node.labels) if node.labels else None
        if not node.ready:
            probes.skipped_nodes[node.name] = "node is not Ready"
        elif refused:
            probes.skipped_nodes[node.name] = refused
    specs = [probe_pod_spec(node=n.name, namespace=probes.namespace, image=image,
                            run_id=probes.run_id, placement=probes.placement)
             for n in nodes if n.name not in probes.skipped_nodes]
    await create_pods(cluster, probes, specs)
    return specs


async def wait_ready(
    cluster: Cluster, probes: ProbeSet, pods: Sequence[Mapping[str, Any]], timeout: float,
    network_grace: float = NETWORK_GRACE,
) -> None:
    """Poll until every probe (``pods``: the specs created) is Ready or the deadline
    passes; record failures once.

    A probe whose pod network cannot be set up (the runtime keeps reporting it in
    Events) is given up after ``network_grace`` seconds instead of the whole deadline:
    the runtime's retries will not succeed until someone fixes the node, and that
    node's failure is itself the finding.
    """
    started = time.monotonic()
    end = started + timeout
    pending = {str(p["metadata"]["name"]): p for p in pods}
    by_name: dict[str, Mapping[str, Any]] = {}
    given_up: set[str] = set()
    pulling_since: dict[str, float] = {}
    next_event_check = started + network_grace
    pauses = poll_pauses()
    selector = f"{RUN_ID}={probes.run_id}"
    roles = {str((p["metadata"].get("labels") or {}).get(ROLE, "")) for p in pods}
    if len(roles) == 1 and "" not in roles:  # the other kind of the run's pods is not listed
        selector += f",{ROLE}={roles.pop()}"
    while pending.keys() - given_up and time.monotonic() < end:
        listed = await cluster.list("pods", namespace=probes.namespace, selector=selector)
        by_name = {o["metadata"]["name"]: o for o in listed}
        for name in list(pending):
            obj = by_name.get(name)
            if obj is not None and pod_ready(obj):
                node = obj["spec"]["nodeName"]
                probes.ready[node] = ExecTarget(probes.namespace, name, node,
                                                obj["status"].get("podIP", ""), cluster.api,
                                                obj["spec"]["containers"][0]["name"])
                del pending[name]
            elif obj is not None and _hopeless(obj):
                given_up.add(name)
            elif obj is not None and image_pull_problem(obj):
                first = pulling_since.setdefault(name, time.monotonic())
                if time.monotonic() - first >= IMAGE_GRACE or \
                        str(image_pull_problem(obj)).startswith("InvalidImageName"):
                    given_up.add(name)
        if time.monotonic() >= next_event_check:
            next_event_check = time.monotonic() + 2.0
            waiting = sorted(pending.keys() - given_up)
            for name, lines in (await namespace_events(cluster, probes.namespace,
                                                       waiting)).items():
                if any(r in line for line in lines for r in NETWORK_SETUP_REASONS):
                    given_up.add(name)
        if pending.keys() - given_up:
            # Most probes are Ready within a second; the rest need not be asked 10 times
            # a second (every ask lists the run's pods).
            await asyncio.sleep(next(pauses))
    probes.wait_seconds = time.monotonic() - started
    all_events = await namespace_events(cluster, probes.namespace, sorted(pending))
    for name, pod in pending.items():
        obj = by_name.get(name, pod)
        node = obj["spec"]["nodeName"]
        events = all_events.get(name, ())
        if _hopeless(obj):
            reason = f"cannot start: {pod_problem(obj)}"
        elif image_pull_problem(obj):
            reason = (f"image problem on {node}: {image_pull_problem(obj)} (mirror the image "
                      "or give --image-pull-secret; see docs/access.md)")
        elif name in given_up:
            reason = f"pod network cannot be set up on {node}: {pod_problem(obj)}"
        else:
            reason = f"not Ready within {timeout:g}s (--setup-timeout): {pod_problem(obj)}"
        probes.failed[node] = ProbeFailure(node, name, reason, events)


def _hopeless(obj: Mapping[str, Any]) -> bool:
    # A probe that already failed will not become Ready: stop waiting for the others' sake.
    return str(obj.get("status", {}).get("phase")) in ("Failed", "Succeeded")


async def remove(cluster: Cluster, probes: ProbeSet, wait: float = 20.0,
                 budget: float = CLEANUP_BUDGET) -> list[str]:
    """Delete what this run created, newest first, then anything else carrying its run id
    (a create interrupted by Ctrl-C may have reached the API unrecorded); return problems.

    Objects that could not be deleted are left in ``probes.unremoved`` (with the command
    that removes them, see :meth:`Leftover.command`).
    """
    problems: list[str] = []
    failed: list[Leftover] = []
    recorded = list(reversed(probes.created))
    probes.created.clear()

    async def delete(kind: str, namespace: str, name: str) -> None:
        if not await delete_object(cluster, kind, namespace, name, problems, budget):
            failed.append(Leftover(kind, namespace if kind == "pod" else "", name,
                                   probes.run_id))

    # Pods first, in one request by the run's label (one each would make cleanup O(nodes)
    # requests, paced by the client's rate limit); one by one, side by side, when the
    # credentials lack that verb. Then what holds them (the namespace), still newest first.
    selector = f"{RUN_ID}={probes.run_id}"
    recorded_pods = [name for kind, name in recorded if kind == "pod"]
    at_once = await delete_collection(cluster, "pods", probes.namespace, selector, problems,
                                      budget) if len(recorded_pods) > 1 else None
    if at_once is None:
        await asyncio.gather(*(delete("pod", probes.namespace, name) for name in recorded_pods))
    elif not at_once:
        failed += [Leftover("pod", probes.namespace, name, probes.run_id)
                   for name in recorded_pods]
    for kind, name in recorded:
        if kind != "pod":
            await delete(kind, "", name)
    try:
        strays = [("pod", o) for o in await cluster.list("pods", selector=selector)]
        strays += [("namespace", o) for o in await cluster.list("namespaces", selector=selector)]
    except Exception as exc:
        probes.unremoved = failed or [Leftover(kind, probes.namespace if kind == "pod" else "",
                                               name, probes.run_id) for kind, name in recorded]
        return [*problems, f"listing objects of run {probes.run_id}: {exc}"]
    # Strays: objects not deleted yet. Those already going (a deletion timestamp) were
    # deleted above and need no second request; those that failed are already listed.
    known = {(f.kind, f.name) for f in failed}
    strays = [(kind, obj) for kind, obj in strays if (kind, obj["metadata"]["name"]) not in known
              and not obj["metadata"].get("deletionTimestamp")]
    await asyncio.gather(*(delete(kind, obj["metadata"].get("namespace", ""),
                                  obj["metadata"]["name"])
                           for kind, obj in strays if kind == "pod"))
    for kind, obj in strays:
        if kind != "pod":
            await delete(kind, "", obj["metadata"]["name"])
    probes.unremoved = failed
    try:
        await bounded(_gone(cluster, probes), wait, f"probe pods of run {probes.run_id} to go")
    except Exception as exc:
        problems.append(str(exc))
    return problems


async def _gone(cluster: Cluster, probes: ProbeSet) -> None:
    pauses = poll_pauses()
    while await cluster.list("pods", selector=f"{RUN_ID}={probes.run_id}"):
        await asyncio.sleep(next(pauses))
