"""Run ``pytest -m validate`` against a lab as a subprocess, as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftests.e2e.labrun import REPO, RUN_TIMEOUT, Lab, _env, diagnose_argv

LAB_URL = "http://192.0.2.10/"  # the lab's documentation-address web server


@dataclass
class Validated:
    """One finished ``pytest -m validate`` run."""

    returncode: int
    output: str
    summary: dict[str, Any]
    seconds: float

    def outcomes(self, outcome: str) -> list[str]:
        """Test ids with that outcome."""
        return [t["nodeid"] for t in self.summary.get("tests", []) if t["outcome"] == outcome]

    @property
    def top(self) -> tuple[str, str | None] | None:
        """(id, node) of the most explanatory root cause."""
        causes = self.summary.get("root_causes") or []
        return (causes[0]["id"], causes[0]["node"]) if causes else None


def run_validate(lab: Lab, report_dir: Path, marker: str = "validate", *extra: str
                 ) -> Validated:
    """The suite as a user runs it (``-m MARKER``, then ``extra`` options), with lab-safe
    external targets."""
    shutil.rmtree(report_dir, ignore_errors=True)
    argv = diagnose_argv(lab.kubeconfig, report_dir, f"--external-url={LAB_URL}", *extra)
    argv[argv.index("diagnose")] = marker
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    path = report_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    return Validated(done.returncode, done.stdout + done.stderr, summary,
                     time.monotonic() - started)
