"""Wall time of ``netdoctor lab up`` and ``lab down`` for 3 and 20 nodes.

Usage: python benchmarks/lab_up_down.py [--reps N] [--profile NAME|all ...]
With ``--profile``, 3-node labs of each named profile (``all``: every profile) instead.
Starts and removes its own labs under /tmp/ndle-bench-*; needs root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {3: (10.0, 3.0)}  # nodes -> (up, down) seconds


def _lab(*args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "netdoctor.cli", "lab", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"lab {' '.join(args)} failed: {done.stderr.strip()}")
    return took


def measure(workers: int, reps: int, profile: str | None = None
            ) -> tuple[list[float], list[float]]:
    ups: list[float] = []
    downs: list[float] = []
    extra = ["--profile", profile] if profile else []
    for i in range(reps):
        state = f"/tmp/ndle-bench-{os.getpid()}-{workers}-{i}"
        try:
            ups.append(_lab("up", "--state-dir", state, "--workers", str(workers), *extra))
        finally:
            downs.append(_lab("down", "--state-dir", state))
    return ups, downs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="append", default=[])
    args = parser.parse_args()
    failed = False
    runs: list[tuple[int, str | None]] = [(2, None), (19, None)]
    if args.profile:
        from netdoctor.lab import profiles

        names = profiles.names() if "all" in args.profile else args.profile
        runs = [(2, name) for name in names]
    for workers, profile in runs:
        nodes = workers + 1
        ups, downs = measure(workers, args.reps, profile)
        up_med, down_med = statistics.median(ups), statistics.median(downs)
        line = (f"{profile + ' ' if profile else ''}{nodes:>2} nodes: up median {up_med:5.2f}s "
                f"({', '.join(f'{u:.2f}' for u in ups)}), down median {down_med:5.2f}s "
                f"({', '.join(f'{d:.2f}' for d in downs)})")
        if nodes in TARGETS:
            up_t, down_t = TARGETS[nodes]
            ok = up_med <= up_t and down_med <= down_t
            failed |= not ok
            line += f"  targets up <= {up_t:.0f}s, down <= {down_t:.0f}s: " \
                    f"{'met' if ok else 'MISSED'}"
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
