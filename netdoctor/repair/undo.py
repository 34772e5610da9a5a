"""Undo records, the audit Events, the cooldown of failed hooks, and the rollback itself.

Where the records live: ``undo.json`` in the run's report directory, rewritten after every
applied step (an interrupted run keeps what it did), next to ``plan.json``; node files
and tables are copied to ``/var/backups/netdoctor/<run-id>/`` on the node before they
change, and the undo commands read them from there. The report directory is the one
place that outlives the run without a write the cluster could refuse, and it is where the
operator already looks (docs/remediate.md).

Example:
    >>> reverse_patch({"data": {"Corefile": "old"}}, {"data": {"Corefile": "new"}})
    {'data': {'Corefile': 'old'}}
    >>> reverse_patch({"spec": {}}, {"spec": {"template": {"metadata": {"x": "1"}}}})
    {'spec': {'template': None}}
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from netdoctor.repair.model import Undo

UNDO_NAME = "undo.json"
COOLDOWN_NAME = ".netdoctor-cooldown.json"
COOLDOWN = 3600.0  # seconds a failed hook rests before a run may try it again
REASON = "NetdoctorRemediation"
_KINDS = {"nodes": ("v1", "Node"), "pods": ("v1", "Pod"), "services": ("v1", "Service"),
          "configmaps": ("v1", "ConfigMap"), "deployments": ("apps/v1", "Deployment"),
          "daemonsets": ("apps/v1", "DaemonSet")}


def reverse_patch(old: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that puts back what ``patch`` changes in ``old`` (a key that was
    absent becomes ``None``, which a merge patch deletes)."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        before = old.get(key)
        if isinstance(value, Mapping) and value and isinstance(before, Mapping):
            out[key] = reverse_patch(before, value)
        else:
            out[key] = copy.deepcopy(before)
    return out


def event_body(kind: str, namespace: str | None, name: str, message: str,
               run_id: str) -> dict[str, Any]:
    """A core/v1 Event on the object a step touched."""
    version, kind_name = _KINDS.get(kind, ("v1", kind[:-1].capitalize()))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj: dict[str, Any] = {"apiVersion": version, "kind": kind_name, "name": name}
    if namespace:
        obj["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"netdoctor-{run_id}-",
                         "namespace": namespace or "default",
                         "labels": {"app.kubernetes.io/managed-by": "netdoctor",
                                    "netdoctor.io/run-id": run_id}},
            "involvedObject": obj, "reason": REASON, "message": message, "type": "Normal",
            "source": {"component": "netdoctor"}, "firstTimestamp": now,
            "lastTimestamp": now, "count": 1}


def write_undo(directory: Path, run_id: str, undos: Iterable[Undo]) -> Path:
    """(Re)write ``undo.json``: the run id and every undo record in the order made."""
    path = directory / UNDO_NAME
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "backups": f"/var/backups/netdoctor/{run_id}",
                               "undo": [u.to_json() for u in undos]}, indent=1) + "\n")
    tmp.replace(path)
    return path


def find_undo(root: Path, run_id: str) -> Path | None:
    """The ``undo.json`` of ``run_id`` under ``root`` (a report directory or its parent)."""
    for path in sorted(root.rglob(UNDO_NAME)):
        try:
            if json.loads(path.read_text()).get("run_id") == run_id:
                return path
        except ValueError:
            continue
    return None


def read_undo(path: Path) -> list[Undo]:
    """The undo records of one run."""
    return [Undo.from_json(u) for u in json.loads(path.read_text()).get("undo", [])]


@dataclass(frozen=True)
class Cooldown:
    """Hooks that failed recently, per cluster, in a file next to the report directories."""

    path: Path
    cluster: str
    seconds: float = COOLDOWN

    def _load(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def cooling(self, now: float | None = None) -> dict[str, str]:
        """Hook -> why it may not run now."""
        now = time.time() if now is None else now
        out = {}
        for hook, when in self._load().get(self.cluster, {}).items():
            left = when + self.seconds - now
            if left > 0:
                out[hook] = (f"failed {int(now - when)}s ago: cooling down for {int(left)}s "
                             "more (--retry-failed to try now)")
        return out

    def record(self, failed: Iterable[str], succeeded: Iterable[str],
               now: float | None = None) -> None:
        """Remember hooks that failed now; forget those that succeeded."""
        data = self._load()
        mine = data.setdefault(self.cluster, {})
        for hook in succeeded:
            mine.pop(hook, None)
        for hook in failed:
            mine[hook] = time.time() if now is None else now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=1) + "\n")


class UndoTarget(Protocol):
    """What a rollback needs from the cluster (the live context provides it)."""

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        """Run a changing script on the node."""
        ...

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any],
              deadline: float) -> None:
        """Merge-patch one object."""
        ...

    def delete(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        """Delete one object."""
        ...

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        """Record an Event on the object."""
        ...


def undo_one(target: UndoTarget, undo: Undo, deadline: float = 60.0) -> str:
    """Revert one record; return what was done. Raises when the revert failed."""
    if undo.kind == "none":
        return f"not undoable: {undo.description}"
    if undo.kind == "node":
        assert undo.node is not None
        code, out, err = target.node_exec(undo.node, "set -e\n" + undo.command, deadline)
        if code != 0:
            raise RuntimeError(f"exit {code} on {undo.node}: {(err or out).strip()[-300:]}")
        target.event("nodes", None, undo.node, f"rollback: {undo.description}")
        return f"{undo.node}: {undo.command.splitlines()[0][:120]}"
    kind, ref = undo.target.split(" ", 1)
    ns, _, name = ref.rpartition("/")
    if undo.kind == "api-patch":
        target.patch(kind, ns, name, json.loads(undo.command), deadline)
    else:
        target.delete(kind, ns or None, name, deadline)
    if undo.kind == "api-patch":
        target.event(kind, ns or None, name, f"rollback: {undo.description}")
    return f"{undo.kind} {undo.target}"
