"""The lab kubelet and scheduler: pods on nodes, node status, exec and logs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from netdoctor.lab import cni, events
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import ApiError, Obj, Store, now
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.kubelet.pod import PodWorker
from netdoctor.lab.kubelet.serviceaccount import TokenIssuer
from netdoctor.lab.kubelet.status import unschedulable_status
from netdoctor.lab.registry import Registry
from netdoctor.lab.scheduling import pick_node

log = logging.getLogger("netdoctor.lab.kubelet")
PODS = resource("", "pods")
NODES = resource("", "nodes")
NODE_STATUS_PERIOD = 1.0
"""Seconds between node status passes (a real kubelet reports every 10 s)."""
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


class Kubelet:
    """Every node's kubelet plus the scheduler, on one event loop.

    ``backoff_scale`` and ``probe_scale`` compress CrashLoopBackOff delays and probe
    periods so that a crash-looping pod shows its real states within seconds.
    """

    def __init__(
        self, store: Store, lab: LabInfo, *, backoff_scale: float = 0.1, probe_scale: float = 0.2
    ) -> None:
        self.store, self.lab = store, lab
        self.backoff_scale, self.probe_scale = backoff_scale, probe_scale
        self.registry = Registry()
        self.token_issuer: TokenIssuer | None = None
        """Issues ServiceAccount tokens for the pods' token volumes (set by the lab)."""
        self.workers: dict[str, PodWorker] = {}
        self.stopping: dict[str, asyncio.Task[None]] = {}
        self._unschedulable: dict[str, str] = {}

    async def run(self) -> None:
        """Sync pods after every burst of events and node status every second."""
        # Pods and Nodes only: the Events it records itself, Leases and the rest say nothing
        # about which pods to start or stop.
        queue = self.store.subscribe(PODS, NODES)
        statused = -NODE_STATUS_PERIOD
        try:
            while True:
                try:
                    # Node status once a second, not after every burst of pod events: each
                    # pass reads every node's CNI config and rewrites its object.
                    if time.monotonic() - statused >= NODE_STATUS_PERIOD:
                        statused = time.monotonic()
                        self.update_nodes()
                    self.sync()
                except Exception:  # one bad pass must not stop every node's kubelet
                    log.exception("kubelet sync failed; retrying on the next event")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), 1.0)
                await asyncio.sleep(0.01)
                while not queue.empty():
                    queue.get_nowait()
        finally:
            self.store.unsubscribe(queue)

    async def shutdown(self) -> None:
        """Stop every pod (the lab is going down)."""
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        await asyncio.gather(*self.stopping.values(), return_exceptions=True)
        self.workers.clear()

    # -- scheduling and pod workers ------------------------------------------------------
    def sync(self) -> None:
        """Schedule pending pods, start workers for new pods, stop deleted ones."""
        seen: set[str] = set()
        for pod in list(self.store.items(PODS)):
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            node_name = pod["spec"].get("nodeName")
            if pod["metadata"].get("deletionTimestamp"):
                self._finish_deletion(pod)
            elif not node_name:
                self._schedule(pod)
            elif uid not in self.workers and node_name in self.lab.nodes:
                self._start(pod)
        for uid in [u for u in self.workers if u not in seen]:
            self._stop(uid, remove=None)

    def _start(self, pod: Obj) -> None:
        worker = PodWorker(self, pod, self.lab.nodes[pod["spec"]["nodeName"]])
        self.workers[worker.uid] = worker
        worker.task = asyncio.create_task(worker.run(), name=f"pod-{worker.name}")

    def _finish_deletion(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.workers:
            self._stop(uid, remove=pod)
        elif uid not in self.stopping:
            with contextlib.suppress(ApiError):
                self.store.remove(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _stop(self, uid: str, remove: Obj | None) -> None:
        worker = self.workers.pop(uid)

        async def stop() -> None:
            log.info("stopping pod %s/%s", worker.namespace, worker.name)
            try:
                await worker.stop()
                log.info("stopped pod %s/%s", worker.namespace, worker.name)
            finally:
                self.stopping.pop(uid, None)
                if remove is not None:
                    current = self.store.find(PODS, worker.namespace, worker.name)
                    if current is not None and current["metadata"]["uid"] == uid:
                        self.store.remove(PODS, worker.namespace, worker.name)

        self.stopping[uid] = asyncio.create_task(stop())

    def _schedule(self, pod: Obj) -> None:
        nodes = list(self.store.items(NODES))
        load: dict[str, int] = {}
        placed = [p for p in self.store.items(PODS) if p["spec"].get("nodeName")]
        for p in placed:
            load[p["spec"]["nodeName"]] = load.get(p["spec"]["nodeName"], 0) + 1
        node = pick_node(pod["spec"], nodes, load, pod, placed)
        ns, name, uid = (
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            pod["metadata"]["uid"],
        )
        if node is None:
            message = (
                f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) didn't match "
                "Pod's node affinity/selector or had untolerated taints. preemption: 0/"
                f"{len(nodes)} nodes are available."
            )
            if self._unschedulable.get(uid) != message:
                self._unschedulable[uid] = message
                self.store.mutate(
                    PODS,
                    ns,
                    name,
                    lambda o: o.__setitem__("status", unschedulable_status(o, message)),
                    subresource="status",
                )
                events.record(
                    self.store,
                    pod,
                    "FailedScheduling",
                    message,
                    type_="Warning",
                    component="default-scheduler",
                )
            return
        target = node["metadata"]["name"]
        self._unschedulable.pop(uid, None)
        self.store.mutate(PODS, ns, name, lambda o: o["spec"].__setitem__("nodeName", target))
        events.record(
            self.store,
            pod,
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {target}",
            component="default-scheduler",
        )

    # -- node status ---------------------------------------------------------------------
    def update_nodes(self) -> None:
        """Ready when the node's CNI is initialised, NotReady (and tainted) when not."""
        for name, info in self.lab.nodes.items():
            problem = cni.network_ready(info.root, self.lab.cni_conf_dir)
            self.store.mutate(NODES, "", name, functools.partial(_node_ready, problem=problem),
                              subresource="all")


def _node_ready(node: Obj, problem: str | None) -> None:
    status = node.setdefault("status", {})
    conds = {c["type"]: c for c in status.get("conditions") or []}
    ready = conds.get("Ready", {})
    want = "False" if problem else "True"
    if ready.get("status") != want:
        stamp = now()
        ready.update(
            {
                "type": "Ready",
                "status": want,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
                "reason": "KubeletNotReady" if problem else "KubeletReady",
                "message": (
                    "container runtime network not ready: NetworkReady=false "
                    "reason:NetworkPluginNotReady message:Network plugin returns "
                    f"error: {problem}"
                )
                if problem
                else "kubelet is posting ready status",
            }
        )
        conds["Ready"] = ready
        status["conditions"] = list(conds.values())
    taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != NOT_READY_TAINT["key"]]
    if problem:
        taints.append(dict(NOT_READY_TAINT))
    if taints:
        node["spec"]["taints"] = taints
    else:
        node["spec"].pop("taints", None)
