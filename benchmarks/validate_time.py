"""Wall time of ``pytest -m validate`` on healthy labs of 3 and 12 nodes (lab start-up
excluded), next to ``pytest -m diagnose`` on the same lab to show diagnose keeps its target.

Run as root from the repository: ``python -m benchmarks.validate_time [--repeat N]``.
Targets: validate 12 nodes <= 2.5x 3 nodes; kept from diagnose: healthy 3 nodes diagnose
<= 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from selftests.e2e.labrun import LabDidNotStart, lab_up, run_diagnose
from selftests.e2e.validaterun import run_validate

CASES: tuple[tuple[str, int], ...] = (("healthy, 3 nodes", 2), ("healthy, 12 nodes", 11))
DIAGNOSE_TARGET = 15.0
SCALE_TARGET = 2.5


def measure(workers: int, repeat: int, base: Path) -> tuple[list[float], list[float], int]:
    """Validate and diagnose seconds per run against one healthy lab; the validate test count."""
    lab = lab_up(base / f"healthy-{workers}", "healthy", workers)
    try:
        validate = [run_validate(lab, base / "reports") for _ in range(repeat)]
        diagnose = [run_diagnose(lab.kubeconfig, base / "reports").seconds
                    for _ in range(repeat)]
    finally:
        lab.down()
    failed = [r.outcomes("failed") for r in validate if r.returncode != 0]
    if failed:
        print(f"  validate failed on a healthy lab: {failed[0][:5]}")
    return [r.seconds for r in validate], diagnose, len(validate[0].summary.get("tests", []))


def main(argv: list[str] | None = None) -> int:
    """One line per lab size, then the targets; exit 1 when one is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    validate_medians: dict[int, float] = {}
    diagnose_medians: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="netdoctor-bench-") as tmp:
        for label, workers in CASES:
            try:
                validate, diagnose, tests = measure(workers, args.repeat, Path(tmp))
            except LabDidNotStart as exc:
                print(f"{label:<20} lab did not start: {exc}")
                continue
            validate_medians[workers] = statistics.median(validate)
            diagnose_medians[workers] = statistics.median(diagnose)
            print(f"{label:<20} validate median {validate_medians[workers]:6.2f} s "
                  f"({tests} checks; runs {', '.join(f'{t:.2f}' for t in validate)})  "
                  f"diagnose median {diagnose_medians[workers]:6.2f} s")
    small, large = (w for _, w in CASES)
    ratio = (validate_medians[large] / validate_medians[small]
             if small in validate_medians and large in validate_medians else None)
    diagnose_small = diagnose_medians.get(small)
    checks: list[tuple[str, float | None, float]] = [
        (f"validate 12 nodes / 3 nodes <= {SCALE_TARGET:g}", ratio, SCALE_TARGET),
        (f"healthy 3-node diagnose <= {DIAGNOSE_TARGET:g} s", diagnose_small, DIAGNOSE_TARGET),
    ]
    ok = True
    for name, value, limit in checks:
        verdict = "n/a" if value is None else ("ok" if value <= limit else "MISSED")
        ok = ok and verdict == "ok"
        print(f"{name:<36} {'-' if value is None else f'{value:.2f}':>6}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
