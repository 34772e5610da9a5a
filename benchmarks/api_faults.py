"""``pytest -m diagnose`` on a healthy lab through API outages and a misbehaving API.

Every case must end honestly (verdict none or inconclusive, no root cause, exit 0 or 7; or,
when the API goes away before the cluster could even be read, exit 4 and no verdict at all)
and leave nothing of the run once the API is back; the table shows the wall time and verdict.

Run as root from the repository: ``python -m benchmarks.api_faults [--long 150] [--short 30]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from netdoctor.plugin.scoring import EXIT_INCONCLUSIVE
from selftests.e2e.apipause import LAB_VAR, PAUSE_VAR, POINTS
from selftests.e2e.labrun import Lab, lab_up, probe_objects, run_diagnose

EXIT_FOR = {"none": 0, "inconclusive": EXIT_INCONCLUSIVE}


def one(lab: Lab, reports: Path, env: dict[str, str], fault: str | None) -> tuple[str, bool]:
    """Run once; return (what the run said, whether it was honest and left nothing)."""
    os.environ.update(env)
    if fault:
        lab.fault("inject", fault)
    try:
        run = run_diagnose(lab.kubeconfig, reports, "-p", "selftests.e2e.apipause", "-W",
                           "ignore::UserWarning", timeout=900)
    finally:
        for key in env:
            os.environ.pop(key, None)
        lab.fault("clear", fault or "api-down")
    verdict = str(run.summary.get("verdict"))
    left = probe_objects(lab.kubeconfig)
    refused = run.returncode == 4 and not run.summary and "API server stopped answering" in \
        run.output
    honest = not left and (refused or (verdict in EXIT_FOR and run.returncode == EXIT_FOR[verdict]
                                       and run.summary.get("root_causes") == []))
    said = (f"{run.seconds:6.1f}s  exit {run.returncode}  verdict {verdict:<12} undecided "
            f"{len(run.summary.get('undecided', []))}  left {len(left)}")
    return said, honest


def main(argv: list[str] | None = None) -> int:
    """One line per case; exit 1 when any case was not honest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", type=float, default=150.0)
    parser.add_argument("--short", type=float, default=30.0)
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_up(Path(tmp) / "lab", "healthy")
        try:
            cases: list[tuple[str, dict[str, str], str | None]] = [
                (f"api-down {s:g}s after {point}",
                 {PAUSE_VAR: f"{point}:{s:g}", LAB_VAR: str(lab.state_dir)}, None)
                for s in (args.short, args.long) for point in POINTS]
            cases += [(f"{fault} for the whole run", {}, fault)
                      for fault in ("api-flaky", "api-throttle", "api-slow")]
            for name, env, fault in cases:
                said, honest = one(lab, Path(tmp) / "reports", env, fault)
                failed += not honest
                print(f"{name:<36} {said}  {'ok' if honest else 'NOT HONEST'}", flush=True)
        finally:
            lab.down()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
