"""Wall time of ``pytest -m diagnose`` on labs (lab start-up excluded).

Run as root from the repository: ``python -m benchmarks.diagnose_time [--repeat N]``.
Targets: healthy 3 nodes <= 15 s; problem-statement <= 2x healthy; 12 nodes <= 2.5x 3 nodes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from selftests.e2e.labrun import LabDidNotStart, lab_up, run_diagnose

CASES: tuple[tuple[str, str, int], ...] = (
    ("healthy, 3 nodes", "healthy", 2),
    ("problem-statement, 3 nodes", "problem-statement", 2),
    ("healthy, 12 nodes", "healthy", 11),
    # informational: the single fault with the most probe timeouts (every cross-node pair)
    ("flannel-missing, 3 nodes", "flannel-missing", 2),
)


def measure(scenario: str, workers: int, repeat: int, base: Path) -> list[float]:
    """Seconds per run of the suite against one lab."""
    lab = lab_up(base / f"{scenario}-{workers}", scenario, workers)
    try:
        return [run_diagnose(lab.kubeconfig, base / "reports").seconds for _ in range(repeat)]
    finally:
        lab.down()


def main(argv: list[str] | None = None) -> int:
    """Print one line per case and the three ratios against their targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="netdoctor-bench-") as tmp:
        for label, scenario, workers in CASES:
            try:
                times = measure(scenario, workers, args.repeat, Path(tmp))
            except LabDidNotStart as exc:
                print(f"{label:<30} lab did not start: {exc}")
                continue
            medians[label] = statistics.median(times)
            print(f"{label:<30} median {medians[label]:6.2f} s  runs "
                  + ", ".join(f"{t:.2f}" for t in times))
    ok = True
    healthy = medians.get(CASES[0][0])
    checks = [
        ("healthy <= 15 s", healthy, 15.0),
        ("problem-statement / healthy <= 2", medians.get(CASES[1][0], 0) / healthy
         if healthy and CASES[1][0] in medians else None, 2.0),
        ("12 nodes / 3 nodes <= 2.5", medians.get(CASES[2][0], 0) / healthy
         if healthy and CASES[2][0] in medians else None, 2.5),
    ]
    for name, value, limit in checks:
        verdict = "n/a" if value is None else ("ok" if value <= limit else "MISSED")
        ok = ok and verdict == "ok"
        print(f"{name:<36} {'-' if value is None else f'{value:.2f}':>6}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
