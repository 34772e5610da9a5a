"""A consented repair that was interrupted, remembered so the next run can finish it.

An interrupted ``--remediate`` run may leave the cluster half repaired; its next diagnosis
then often scores below ``confirmed`` (the repaired half no longer shows), which alone would
make the policy refuse without ``--force``. The record, kept per cluster in the report
directory next to the cooldown file, says that the operator already consented to this repair:
the next run plans again from the cluster's real state, shows the plan and (with ``--yes``
or a yes at the prompt) finishes it. A completed run, or one that finds nothing to repair,
clears it; it expires after :data:`MAX_AGE` seconds.

The record also carries the causes the consented plan addressed: the next run binds the
hooks to them as well, each hook planning from the cluster's real state, so a step whose
cause an earlier step already removed (a restart after the fix) is still finished.

Example:
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> p = PendingRepair(d / PENDING_NAME, "https://api:6443")
    >>> p.record("abc123", ["cni-config w2"], d / "undo.json", [("x", "w2")], now=100.0)
    >>> p.find(now=200.0)["run_id"], p.causes(now=200.0)
    ('abc123', (('x', 'w2'),))
    >>> p.clear(); p.find(now=200.0) is None
    True
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING_NAME = ".netdoctor-pending.json"
MAX_AGE = 24 * 3600.0


@dataclass(frozen=True)
class PendingRepair:
    """The interrupted, consented repair of one cluster (by its API server URL)."""

    path: Path
    cluster: str
    max_age: float = MAX_AGE

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.path)

    def record(self, run_id: str, left: Sequence[str], undo: Path | None,
               causes: Sequence[tuple[str, str | None]] = (), now: float | None = None) -> None:
        """Remember that ``run_id`` was interrupted with ``left`` still to do, and the
        causes its consented plan addressed (a later stage's hook, such as a restart once
        the node is fixed, is bound to a cause the earlier stage already removed)."""
        data = self._load()
        data[self.cluster] = {"run_id": run_id, "left": list(left),
                              "causes": [list(c) for c in causes],
                              "undo": str(undo) if undo else None,
                              "when": time.time() if now is None else now}
        self._save(data)

    def causes(self, now: float | None = None) -> tuple[tuple[str, str | None], ...]:
        """The causes of the interrupted repair (none without a record)."""
        found = self.find(now) or {}
        return tuple((str(c[0]), c[1]) for c in found.get("causes") or []
                     if isinstance(c, list) and len(c) == 2)

    def find(self, now: float | None = None) -> dict[str, Any] | None:
        """The record of this cluster, or ``None`` (none, unreadable, or expired)."""
        found = self._load().get(self.cluster)
        now = time.time() if now is None else now
        if not isinstance(found, dict) or now - float(found.get("when", 0)) > self.max_age:
            return None
        return found

    def clear(self) -> None:
        """Forget this cluster's record (the repair finished or is not needed)."""
        data = self._load()
        if data.pop(self.cluster, None) is not None:
            self._save(data)
