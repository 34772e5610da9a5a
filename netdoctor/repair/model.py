"""Remediation hooks and what they produce, as small typed objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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
