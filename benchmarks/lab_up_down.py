"""Wall time of ``netdoctor lab up`` and ``lab down`` and the lab's memory, for 3, 30 and 100 nodes.

Usage: python benchmarks/lab_up_down.py [--reps N] [--nodes N ...] [--profile NAME|all ...]
With ``--profile``, 3-node labs of each named profile (``all``: every profile) instead.
Starts and removes its own labs under /tmp/ndle-bench-*, one at a time; needs root.

Memory is printed twice: ``processes`` is the proportional set size (PSS) of the lab daemon and
every process in the lab's namespaces (the API, kubelet, DNS server, agents); ``host`` is how
much MemAvailable dropped while the lab was up, which also counts the kernel's namespaces,
interfaces and neighbour entries but moves with whatever else runs on the machine.
Targets: 3 nodes up <= 10 s, down <= 3 s; 100 nodes up <= 60 s, down <= 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {3: (10.0, 3.0), 100: (60.0, 20.0)}  # nodes -> (up, down) seconds
DEFAULT_NODES = (3, 30, 100)


@dataclass(frozen=True)
class Sample:
    """One lab: seconds to come up and go down, and its memory in MiB while up."""

    up: float
    down: float
    processes_mib: float
    host_mib: float


def _lab(*args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "netdoctor.cli", "lab", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"lab {' '.join(args)} failed: {done.stderr.strip()}")
    return took


def _mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # the process ended meanwhile
        pass
    return 0


def _children(pid: int) -> set[int]:
    found = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            found |= _children(int(kid))
    return found


def lab_pss_mib(state_dir: Path) -> float:
    """PSS of the lab daemon's process tree and of every process in the lab's namespaces."""
    from netdoctor.lab.net import _ns
    from netdoctor.lab.state import prefix_for

    state = json.loads((state_dir / "state.json").read_text())
    pids = _children(int(state["pid"]))
    for name in _ns.namespaces(prefix_for(state_dir)):
        pids |= set(_ns.pids_in(name))
    return sum(_pss_kib(pid) for pid in pids) / 1024


def measure(workers: int, reps: int, profile: str | None = None) -> list[Sample]:
    """``reps`` labs of ``workers`` workers, one after the other."""
    samples: list[Sample] = []
    extra = ["--profile", profile] if profile else []
    for i in range(reps):
        state = Path(f"/tmp/ndle-bench-{os.getpid()}-{workers}-{i}")
        before = _mem_available_kib()
        up = down = 0.0
        procs = host = 0.0
        try:
            up = _lab("up", "--state-dir", str(state), "--workers", str(workers), *extra)
            time.sleep(2.0)  # let the lab's first reconcile settle before reading memory
            procs = lab_pss_mib(state)
            host = (before - _mem_available_kib()) / 1024
        finally:
            down = _lab("down", "--state-dir", str(state))
        samples.append(Sample(up, down, procs, host))
    return samples


def line(nodes: int, samples: list[Sample], profile: str | None) -> tuple[str, bool]:
    """The printed line for one size and whether it met its target (if it has one)."""
    up_med = statistics.median(s.up for s in samples)
    down_med = statistics.median(s.down for s in samples)
    procs = statistics.median(s.processes_mib for s in samples)
    host = statistics.median(s.host_mib for s in samples)
    text = (f"{profile + ' ' if profile else ''}{nodes:>3} nodes: up median {up_med:5.2f}s "
            f"({', '.join(f'{s.up:.2f}' for s in samples)}), down median {down_med:5.2f}s "
            f"({', '.join(f'{s.down:.2f}' for s in samples)}), memory: processes "
            f"{procs:6.1f} MiB, host {host:6.1f} MiB")
    ok = True
    if nodes in TARGETS:
        up_t, down_t = TARGETS[nodes]
        ok = up_med <= up_t and down_med <= down_t
        text += f"  targets up <= {up_t:.0f}s, down <= {down_t:.0f}s: {'met' if ok else 'MISSED'}"
    return text, ok


def main() -> int:
    """One line per lab size; exit 1 when a size with a target missed it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--nodes", type=int, action="append", default=[],
                        help="lab size in nodes (repeat; default 3, 30 and 100)")
    parser.add_argument("--profile", action="append", default=[])
    args = parser.parse_args()
    failed = False
    runs: list[tuple[int, str | None]] = [(n - 1, None) for n in args.nodes or DEFAULT_NODES]
    if args.profile:
        from netdoctor.lab import profiles

        names = profiles.names() if "all" in args.profile else args.profile
        runs = [(2, name) for name in names]
    for workers, profile in runs:
        text, ok = line(workers + 1, measure(workers, args.reps, profile), profile)
        failed |= not ok
        print(text, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
