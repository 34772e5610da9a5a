"""Remediation hooks and what they produce, as small typed objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Level = Literal["api", "node"]
StepStatus = Literal["planned", "applied", "skipped", "failed"]
Mode = Literal["applied", "dry-run", "refused", "skipped"]

# Stages run in this order; a failure stops every later stage.
STAGES = ("system", "cni", "kube-proxy", "coredns", "node-cni-state", "verify")


@dataclass(frozen=True)
class Action:
    """One change a hook would make: human-readable, plus the exact call or command."""

    description: str
    command: str


@dataclass(frozen=True)
class Plan:
    """What one hook intends on one node (or cluster-wide when ``node`` is None)."""

    hook: str
    node: str | None
    actions: tuple[Action, ...]
    disruptive: bool = False
    backups: tuple[str, ...] = ()  # files copied before they change
    manual: str = ""  # not safe to automate: the exact command an operator may run instead

    @property
    def detail(self) -> str:
        """The actions in one line (or why it is left to the operator)."""
        text = "; ".join(a.description for a in self.actions)
        if self.manual:
            text = f"{text}; not safe to fix automatically, run: {self.manual}".lstrip("; ")
        return text


@dataclass(frozen=True)
class Step:
    """The ``remediation.steps[]`` entry of summary.json."""

    name: str
    node: str | None
    status: StepStatus
    detail: str

    def to_json(self) -> dict[str, object]:
        """As summary.json stores it."""
        return {"name": self.name, "node": self.node, "status": self.status,
                "detail": self.detail}


class RepairContext(Protocol):
    """What hooks may use: the cluster's API and node agents, bounded in time."""

    signals: frozenset[str]
    causes: tuple[tuple[str, str | None], ...]  # (cause id, node) from the ranking
    allow_control_plane: bool

    def control_plane_nodes(self) -> frozenset[str]:
        """Nodes carrying the control-plane role."""
        ...

    def nodes(self) -> dict[str, str]:
        """Ready nodes and their podCIDR."""
        ...

    def node_read(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        """Run a read-only ``script`` on ``node`` (the node's root is at ``/host``, read-only)."""
        ...

    def list(self, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[dict[str, Any]]:
        """API objects of ``kind`` (plural resource name), as dicts."""
        ...

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any],
              deadline: float) -> None:
        """Merge-patch one object."""
        ...

    def pod_log(self, namespace: str, name: str, previous: bool = False) -> str:
        """The tail of a pod's (first container's) log; empty when there is none."""
        ...

    def delete_pod(self, namespace: str, name: str, deadline: float) -> str:
        """Gracefully delete a pod owned by a controller (never force, never a bare pod)."""
        ...

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        """Run ``script`` through the privileged node agent on ``node``."""
        ...

    def rollout_restart(self, kind: str, namespace: str, name: str, deadline: float) -> str:
        """Restart a workload through its pod-template annotation and await the rollout."""
        ...

    def apply_manifest(self, path: str, deadline: float) -> str:
        """Create the objects of a pinned manifest that are missing, and await them."""
        ...


class RemediationHook(Protocol):
    """A repair registered by name; idempotent: a second plan() after apply() is empty."""

    name: str
    stage: str  # one of STAGES
    addresses: frozenset[str]  # signal names and root-cause ids it repairs
    level: Level
    disruptive: bool
    deadline: float  # seconds apply() may take, post-condition included

    def plan(self, ctx: RepairContext) -> list[Plan]:
        """What would change now; empty when there is nothing to do."""
        ...

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        """Make the change; return a short detail. Raise on failure."""
        ...

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        """The post-condition: ``None`` when it holds, else what is still wrong."""
        ...
