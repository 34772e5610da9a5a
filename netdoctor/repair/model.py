"""Remediation hooks and what they produce, as small typed objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Level = Literal["api", "node"]
StepStatus = Literal["planned", "applied", "skipped", "failed", "interrupted"]
Mode = Literal["applied", "dry-run", "refused", "skipped", "over-budget", "blocked",
               "interrupted"]
UndoKind = Literal["node", "api-patch", "api-delete", "none"]

# Stages run in this order; a failure stops every later stage.
STAGES = ("system", "cni", "kube-proxy", "coredns", "node-cni-state", "verify")


@dataclass(frozen=True)
class Action:
    """One change a hook would make: human-readable, plus the exact call or command.

    ``changes`` is what the action counts against ``--max-changes`` (0 for a backup or a
    read); ``touches`` names what it changes; ``undo`` is the node command that reverts it
    (API changes are snapshotted by the context, so their undo is recorded there).
    """

    description: str
    command: str
    changes: int = 1
    touches: str = ""
    undo: str = ""


@dataclass(frozen=True)
class Undo:
    """How to revert one applied change, recorded as it is made (see ``undo.json``)."""

    step: str  # the hook
    node: str | None
    kind: UndoKind
    target: str  # "configmaps kube-system/coredns", or the node for a node command
    command: str  # node script, merge patch (JSON), or "" for api-delete
    description: str

    def to_json(self) -> dict[str, object]:
        """As ``undo.json`` stores it."""
        return {"step": self.step, "node": self.node, "kind": self.kind,
                "target": self.target, "command": self.command,
                "description": self.description}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Undo:
        """Read one entry of ``undo.json``."""
        return cls(str(data["step"]), data.get("node"), data["kind"], str(data["target"]),
                   str(data.get("command", "")), str(data.get("description", "")))


@dataclass(frozen=True)
class Plan:
    """What one hook intends on one node (or cluster-wide when ``node`` is None)."""

    hook: str
    node: str | None
    actions: tuple[Action, ...]
    disruptive: bool = False
    backups: tuple[str, ...] = ()  # files copied before they change
    manual: str = ""  # not safe to automate: the exact command an operator may run instead
    cause: str = ""  # the ranked root cause it addresses ("id@node"), set when it is bound

    @property
    def changes(self) -> int:
        """What applying it counts against ``--max-changes``."""
        return sum(a.changes for a in self.actions) if not self.manual else 0

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
    """What hooks may use: the cluster's API and node agents, bounded in time.

    Every API change the context makes appends how to revert it to ``undos``.
    """

    signals: frozenset[str]
    causes: tuple[tuple[str, str | None], ...]  # (cause id, node) from the ranking
    allow_control_plane: bool
    undos: list[Undo]

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

    def evict_pod(self, namespace: str, name: str, deadline: float) -> str:
        """Evict a controller-owned pod through the Eviction API (PodDisruptionBudgets
        respected, waits at most ``deadline``); raise :class:`EvictionBlocked` when a budget
        keeps it, RuntimeError for a pod without a controller."""
        ...

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        """Record a ``NetdoctorRemediation`` Event on the object (a Node when ``kind`` is
        ``nodes``); best effort, never raises."""
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


class EvictionBlocked(RuntimeError):
    """A PodDisruptionBudget kept a pod through the whole wait: nothing was deleted."""


class RemediationHook(Protocol):
    """A repair registered by name; idempotent: a second plan() after apply() is empty.

    It is planned only when one of its ``causes`` is ranked, and each of its plans is
    applied only when bound to such a cause on the plan's node (or a cluster-wide one).
    """

    name: str
    stage: str  # one of STAGES
    causes: frozenset[str]  # root-cause ids (netdoctor.rootcause.rules) it repairs
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
