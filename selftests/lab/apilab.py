"""A lab API server in a background thread, with TLS, kubeconfigs and seed objects."""

from __future__ import annotations

import asyncio
import base64
import copy
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import trustme
import yaml

from netdoctor.lab.api.apifaults import ApiFaultState
from netdoctor.lab.api.auth import Access
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.server import make_app, serve
from netdoctor.lab.api.store import ApiError, Store

Obj = dict[str, Any]
T = TypeVar("T")

ADMIN_TOKEN = "admin-token"
VIEWER_TOKEN = "viewer-token"
# The viewer may read but not list pods, exec into them or delete anything.
VIEWER = Access("jane", frozenset({("list", "pods"), ("create", "pods/exec"), ("delete", "*")}))
OLD_MANIFEST_TOKEN = "old-manifest-token"
# Everything but deleting a collection (a binding to a manifest older than that rule).
OLD_MANIFEST = Access("ops", frozenset({("deletecollection", "*")}))


class FakeRuntime:
    """Runs exec commands as local processes; logs are canned text."""

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> asyncio.subprocess.Process:
        """Start ``command`` here, refusing pods that are not running."""
        if pod.get("status", {}).get("phase") != "Running":
            raise ApiError(400, "BadRequest", f'container "{container}" in pod '
                           f'"{pod["metadata"]["name"]}" is waiting to start: ContainerCreating')
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(
            *command, stdin=pipe if stdin else asyncio.subprocess.DEVNULL, stdout=pipe,
            stderr=pipe)

    def logs(self, pod: Obj, container: str, *, previous: bool, tail_lines: int | None) -> str:
        """Five numbered lines naming the pod and container."""
        which = "previous" if previous else "current"
        lines = [f"{pod['metadata']['name']}/{container} {which} line {i}" for i in range(1, 6)]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines else []
        return "".join(line + "\n" for line in lines)


def ago(seconds: int) -> str:
    """An RFC 3339 timestamp ``seconds`` in the past."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def namespace(name: str) -> Obj:
    """A namespace as the API server shows it."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def node(name: str, ip: str) -> Obj:
    """A ready worker node with complete status."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name, "labels": {"kubernetes.io/hostname": name,
                                 "node-role.kubernetes.io/worker": ""}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": ago(5), "lastTransitionTime": ago(3600)}],
            "nodeInfo": {"architecture": "amd64", "bootID": "b1", "containerRuntimeVersion":
                         "containerd://1.7.22", "kernelVersion": "6.1.0-lab",
                         "kubeProxyVersion": "v1.31.4", "kubeletVersion": "v1.31.4",
                         "machineID": "m1", "operatingSystem": "linux",
                         "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": "u1"}}}


def container_status(name: str, state: Obj, *, ready: bool, restarts: int = 0,
                     last: Obj | None = None) -> Obj:
    """A complete containerStatuses entry."""
    return {"name": name, "image": "busybox:1.36", "imageID": "docker.io/library/busybox@sha256:"
            + "0" * 64, "containerID": "containerd://" + "a" * 64, "ready": ready,
            "started": ready, "restartCount": restarts, "state": state, "lastState": last or {}}


def pod(name: str, labels: dict[str, str], *, ip: str | None, status: Obj,
        node_name: str | None = "worker-1") -> Obj:
    """A pod with one container ``main``."""
    spec: Obj = {"containers": [{"name": "main", "image": "busybox:1.36",
                                 "command": ["sleep", "infinity"]}],
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}
    if node_name:
        spec["nodeName"] = node_name
    full = {"qosClass": "BestEffort", "startTime": ago(600), **status}
    if ip:
        full.update(podIP=ip, podIPs=[{"ip": ip}], hostIP="192.168.4.11",
                    hostIPs=[{"ip": "192.168.4.11"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": "default", "labels": labels}, "spec": spec, "status": full}


def conditions(ready: bool) -> list[Obj]:
    """Pod conditions for a scheduled pod."""
    flag = "True" if ready else "False"
    return [{"type": t, "status": s, "lastTransitionTime": ago(600)} for t, s in (
        ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", flag),
        ("Ready", flag))]


def seed_objects() -> list[tuple[str, str, Obj]]:
    """(group, plural, object) for a small cluster: one node, three pods, a deployment."""
    running = pod("web-1", {"app": "web"}, ip="10.244.1.5", status={
        "phase": "Running", "conditions": conditions(True), "containerStatuses": [
            container_status("main", {"running": {"startedAt": ago(600)}}, ready=True)]})
    crashing = pod("web-2", {"app": "web"}, ip="10.244.1.6", status={
        "phase": "Running", "conditions": conditions(False), "containerStatuses": [
            container_status("main", {"waiting": {"reason": "CrashLoopBackOff",
                                                  "message": "back-off 40s"}},
                             ready=False, restarts=4,
                             last={"terminated": {"exitCode": 1, "reason": "Error",
                                                  "startedAt": ago(100),
                                                  "finishedAt": ago(90)}})]})
    pending = pod("db-0", {"app": "db"}, ip=None, status={
        "phase": "Pending", "conditions": conditions(False), "containerStatuses": [
            container_status("main", {"waiting": {"reason": "ContainerCreating"}},
                             ready=False)]})
    labels = {"app": "api"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "api", "namespace": "default", "labels": labels}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "api", "image": "busybox:1.36", "env": [{"name": "A", "value": "1"}]}]}}},
        "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                   "availableReplicas": 2, "observedGeneration": 1}}
    return [("", "namespaces", namespace("default")), ("", "namespaces", namespace("kube-system")),
            ("", "nodes", node("worker-1", "192.168.4.11")), ("", "pods", running),
            ("", "pods", crashing), ("", "pods", pending), ("apps", "deployments", deployment)]


def event_for(target: Obj, reason: str, message: str) -> Obj:
    """A core/v1 Event about ``target``."""
    meta = target["metadata"]
    return {"apiVersion": "v1", "kind": "Event", "metadata": {
        "name": f"{meta['name']}.{reason.lower()}", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": "v1", "kind": target["kind"], "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta["uid"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "firstTimestamp": ago(60), "lastTimestamp": ago(60),
        "source": {"component": "kubelet", "host": "worker-1"}}


class ApiLab:
    """The server on 127.0.0.1 with its own event loop thread."""

    def __init__(self, directory: Path) -> None:
        self.store = Store()
        for group, plural, obj in seed_objects():
            self.store.create(resource(group, plural), obj)
        web1 = self.store.get(resource("", "pods"), "default", "web-1")
        self.store.create(resource("", "events"), event_for(web1, "Pulled", "image pulled"))
        self.ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        tokens = {ADMIN_TOKEN: Access.admin(), VIEWER_TOKEN: VIEWER,
                  OLD_MANIFEST_TOKEN: OLD_MANIFEST}
        self.faults = ApiFaultState()
        app = make_app(self.store, FakeRuntime(), tokens, faults=self.faults)
        self.app = app
        self.runner = asyncio.run_coroutine_threadsafe(
            serve(app, [sock], context), self.loop).result(timeout=10)
        self.directory = directory

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"https://127.0.0.1:{self.port}"

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (the store is not thread-safe)."""
        async def run() -> T:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def get(self, group: str, plural: str, name: str, ns: str = "default") -> Obj:
        """A copy of a stored object."""
        return copy.deepcopy(self.call(lambda: self.store.get(resource(group, plural), ns, name)))

    def kubeconfig(self, token: str = ADMIN_TOKEN) -> Path:
        """A kubeconfig file for ``token`` (written once per token)."""
        path = self.directory / f"kubeconfig-{token}"
        ca = base64.b64encode(self.ca.cert_pem.bytes()).decode()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": self.url,
                                                     "certificate-authority-data": ca}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u",
                                                     "namespace": "default"}}]}))
        return path

    def close(self) -> None:
        """Stop serving and end the loop thread."""
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
