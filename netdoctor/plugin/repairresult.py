"""What a ``--remediate`` run did: summary.json's ``remediation`` block, its exit status and
the terminal section."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.plugin.interrupts import EXIT_INTERRUPTED
from netdoctor.redact import redact
from netdoctor.repair.runner import Budget, Outcome

EXIT_REFUSED = 6
"""Exit status of a remediation the policy refused (or another repair's Lease held off)."""


@dataclass
class Result:
    """summary.json's ``remediation`` block, plus what the terminal and exit status need."""

    outcome: Outcome
    score_before: int
    score_after: int | None = None
    verification: str = ""
    still_failing: list[str] = field(default_factory=list)
    log_path: Path | None = None
    log_lines: list[str] = field(default_factory=list)
    run_id: str = ""
    plan: list[dict[str, Any]] = field(default_factory=list)
    plan_files: list[str] = field(default_factory=list)
    undo_path: Path | None = None
    budget: Budget | None = None

    def to_json(self) -> dict[str, Any]:
        """As summary.json stores it (``still_failing`` only after a verification run;
        the keys after ``score_after`` are documented in docs/summary-json.md)."""
        block: dict[str, Any] = {
            "mode": self.outcome.mode, "reason": self.outcome.reason,
            "steps": [s.to_json() for s in self.outcome.steps],
            "score_before": self.score_before, "score_after": self.score_after}
        if self.verification:
            block["still_failing"] = list(self.still_failing)
        block.update({"run_id": self.run_id, "plan": self.plan, "plan_files": self.plan_files,
                      "changes": self.outcome.changes, "left": list(self.outcome.left)})
        if self.budget is not None:
            block["budget"] = {"max_changes": self.budget.total,
                               "max_changes_per_node": self.budget.per_node}
        if self.undo_path is not None:
            block["backups"] = {"undo": str(self.undo_path),
                                "nodes": f"/var/backups/netdoctor/{self.run_id}/",
                                "rollback": f"netdoctor rollback {self.run_id} "
                                            f"--report-dir {self.undo_path.parent}"}
        return block

    def exit_status(self, pytest_status: int) -> int:
        """0 when nothing remains, 1 when something does, EXIT_REFUSED when refused,
        EXIT_INTERRUPTED when a signal stopped it."""
        if self.outcome.mode == "interrupted":
            return EXIT_INTERRUPTED
        if self.outcome.mode == "refused":
            return EXIT_REFUSED
        if self.outcome.mode in ("over-budget", "blocked"):
            return 1  # the run stopped with work left
        if self.outcome.mode == "applied":
            repaired = self.score_after == 0 and not self.still_failing
            return 0 if repaired and not self.outcome.failed and not self.outcome.left else 1
        return 0 if self.score_before == 0 else max(pytest_status, 1)



def summary_lines(result: Result) -> list[str]:
    """The terminal section's lines."""
    after = "-" if result.score_after is None else str(result.score_after)
    lines = [f"mode: {result.outcome.mode} ({result.outcome.reason})",
             f"score before: {result.score_before}, after: {after}"
             + (f" ({result.verification})" if result.verification else "")]
    for step in result.outcome.steps:
        first = step.detail.splitlines()[0] if step.detail else ""
        lines.append(f"  {step.status.upper():8} {step.name} {step.node or '-'}: {redact(first)}")
    lines += [f"  STILL FAILING {nodeid}" for nodeid in result.still_failing]
    if result.outcome.left:
        lines.append(f"left when it stopped: {', '.join(result.outcome.left)}")
    if result.budget is not None and result.outcome.mode != "refused":
        lines.append(f"changes: {result.outcome.changes} of --max-changes {result.budget.total}")
    if result.plan_files:
        lines.append(f"plan: {', '.join(result.plan_files)}")
    if result.undo_path is not None:
        lines.append(f"undo: {result.undo_path} (netdoctor rollback {result.run_id} "
                     f"--report-dir {result.undo_path.parent})")
    if result.log_path is not None:
        lines.append(f"log: {result.log_path}")
    return lines
