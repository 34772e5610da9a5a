"""Pod status exactly as a kubelet writes it: phase, conditions, containerStatuses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from netdoctor.lab.api.store import now

Obj = dict[str, Any]


def image_id(image: str) -> str:
    """A digest-style image ID for ``image`` (repository@sha256:...)."""
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def container_id(pod_uid: str, name: str, attempt: int) -> str:
    """A containerd-style container ID, stable per attempt."""
    digest = hashlib.sha256(f"{pod_uid}/{name}/{attempt}".encode()).hexdigest()
    return f"containerd://{digest}"


@dataclass
class ContainerState:
    """What the kubelet knows of one container."""

    name: str
    image: str
    restart_count: int = 0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    container_id: str = ""

    @property
    def running(self) -> bool:
        """The container process is up."""
        return "running" in self.state

    def to_status(self) -> Obj:
        """The ``containerStatuses[]`` entry."""
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
            "imageID": image_id(self.image) if self.container_id else "",
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def _condition(
    old: dict[str, Obj], ctype: str, ok: bool, reason: str | None = None, message: str | None = None
) -> Obj:
    status = "True" if ok else "False"
    prev = old.get(ctype)
    cond: Obj = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": prev["lastTransitionTime"]
        if prev and prev.get("status") == status
        else now(),
    }
    if not ok and reason:
        cond["reason"] = reason
        cond["message"] = message or ""
    return cond


def pod_status(
    pod: Obj,
    containers: list[ContainerState],
    *,
    sandbox_ready: bool,
    pod_ip: str | None,
    host_ip: str,
    started_at: str | None,
) -> Obj:
    """The full pod status for the current container states."""
    old = pod.get("status") or {}
    old_conds = {c["type"]: c for c in old.get("conditions") or []}
    unready = [c.name for c in containers if not c.ready]
    any_started = any(c.started or c.restart_count for c in containers)
    policy = pod["spec"].get("restartPolicy", "Always")
    terminated = [c.state.get("terminated") for c in containers]
    if policy != "Always" and all(terminated):
        phase = "Succeeded" if all(t and t.get("exitCode") == 0 for t in terminated) else "Failed"
    else:
        phase = "Running" if any_started else "Pending"
    msg = f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _condition(old_conds, "PodReadyToStartContainers", sandbox_ready),
        _condition(old_conds, "Initialized", True),
        _condition(old_conds, "Ready", not unready, "ContainersNotReady", msg),
        _condition(old_conds, "ContainersReady", not unready, "ContainersNotReady", msg),
        _condition(old_conds, "PodScheduled", True),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "qosClass": old.get("qosClass", "BestEffort"),
        "containerStatuses": [c.to_status() for c in containers],
    }
    if started_at:
        status["startTime"] = started_at
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status


def unschedulable_status(pod: Obj, message: str) -> Obj:
    """Status of a pod the scheduler cannot place."""
    old = pod.get("status") or {}
    old_conds = {c["type"]: c for c in old.get("conditions") or []}
    cond = _condition(old_conds, "PodScheduled", False, "Unschedulable", message)
    return {"phase": "Pending", "conditions": [cond], "qosClass": old.get("qosClass", "BestEffort")}
