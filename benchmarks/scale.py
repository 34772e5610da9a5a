"""Diagnose and validate at scale with default coverage: wall time, failed checks on healthy
labs, API requests and execs per node, and CPU seconds per node of the suite and of the lab.

The lab emulates every node's kubelet, network and exec on this one machine, so its CPU
grows with the nodes whatever the suite does; the suite's own CPU (the pytest process) is
what a real cluster's user pays on the machine running it.

Run as root from the repository: ``python -m benchmarks.scale [--nodes 3 --nodes 100]
[--runs N]``. One healthy lab per size (one at a time, removed before the next); each run's
API requests are read from the lab's own counts (``lab status --json``, ``requests``).
Targets: diagnose at the largest size <= 4x the smallest, validate <= 6x; 0 failed checks on
every healthy run; requests per node per diagnose run bounded (the same order at every size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftests.e2e.labrun import (
    REPO,
    Lab,
    LabDidNotStart,
    _env,
    diagnose_argv,
    lab_requests,
    lab_status,
    lab_up,
)

LAB_URL = "http://198.51.100.10/"  # the lab's outside web server (a documentation address)
TARGETS = {"diagnose": 4.0, "validate": 6.0}
RUN_TIMEOUT = 1800.0


@dataclass(frozen=True)
class RunFigures:
    """One run: wall seconds, failed, passed and skipped checks, API requests it caused."""

    seconds: float
    failed: int
    passed: int
    skipped: int
    """On a healthy lab a skipped path is one the run did not measure: not clean either."""
    requests: int
    exit_code: int
    execs: int
    """``pods/exec`` requests (one per batch of probe commands)."""
    suite_cpu: float
    """CPU seconds of the pytest process (user + system)."""
    lab_cpu: float
    """CPU seconds of the lab daemon and the commands it ran (user + system)."""


def lab_cpu(lab: Lab) -> float:
    """CPU seconds so far of the lab daemon and of the commands it has reaped."""
    pid = json.loads((lab.state_dir / "state.json").read_text()).get("pid", 0)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(lab: Lab, mode: str, reports: Path, *extra: str) -> RunFigures:
    """One ``pytest -m MODE`` run as a user types it, and what it cost the API and the CPU."""
    argv = diagnose_argv(lab.kubeconfig, reports, f"--external-url={LAB_URL}", *extra)
    argv[argv.index("diagnose")] = mode
    counts = lab_requests(lab)
    before, execs_before = sum(counts.values()), counts.get("get pods/exec", 0)
    cpu_before, lab_before = children_cpu(), lab_cpu(lab)
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    suite_cpu, lab_used = children_cpu() - cpu_before, lab_cpu(lab) - lab_before
    counts = lab_requests(lab)
    after, execs = sum(counts.values()), counts.get("get pods/exec", 0) - execs_before
    summary_path = reports / "summary.json"
    tests = json.loads(summary_path.read_text()).get("tests", []) if summary_path.exists() \
        else []
    failed = sum(1 for t in tests if t.get("outcome") in ("failed", "error"))
    passed = sum(1 for t in tests if t.get("outcome") == "passed")
    skipped = sum(1 for t in tests if t.get("outcome") == "skipped")
    if failed or done.returncode not in (0,):
        tail = "\n    ".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        print(f"    {mode}: exit {done.returncode}, {failed} failed:\n    {tail}", flush=True)
    return RunFigures(seconds, failed, passed, skipped, after - before, done.returncode, execs,
                      suite_cpu, lab_used)


@dataclass(frozen=True)
class SizeFigures:
    """Every run at one lab size."""

    nodes: int
    diagnose: list[RunFigures]
    validate: list[RunFigures]
    stalls: dict[str, Any]
    """The lab's event-loop stalls over all runs (``lab status --json``)."""


def measure(nodes: int, runs: int, base: Path) -> SizeFigures:
    """``runs`` diagnose and ``runs`` validate runs on one healthy lab of ``nodes`` nodes."""
    lab = lab_up(base / f"lab-{nodes}", "healthy", nodes - 1)
    try:
        diagnose = [run(lab, "diagnose", base / "reports") for _ in range(runs)]
        validate = [run(lab, "validate", base / "reports") for _ in range(runs)]
        stalls = lab_status(lab).get("stalls", {})
    finally:
        lab.down()
    return SizeFigures(nodes, diagnose, validate, stalls)


def describe(size: SizeFigures) -> list[str]:
    """The printed lines for one size."""
    lines = []
    for mode, figures in (("diagnose", size.diagnose), ("validate", size.validate)):
        secs = [f.seconds for f in figures]
        reqs = [f.requests for f in figures]
        lines.append(
            f"{size.nodes:>3} nodes {mode:<8} median {statistics.median(secs):7.2f}s "
            f"(runs {', '.join(f'{s:.1f}' for s in secs)}); failed checks per run "
            f"{[f.failed for f in figures]}, skipped {[f.skipped for f in figures]} of "
            f"{figures[0].passed + figures[0].failed + figures[0].skipped}; "
            f"API requests per node {statistics.median(reqs) / size.nodes:6.1f} "
            f"(per run {reqs}); execs per node "
            f"{statistics.median(f.execs for f in figures) / size.nodes:4.1f}; CPU seconds per "
            f"node: suite {statistics.median(f.suite_cpu for f in figures) / size.nodes:5.3f}, "
            f"lab {statistics.median(f.lab_cpu for f in figures) / size.nodes:5.3f}")
    lines.append(f"{size.nodes:>3} nodes lab event-loop stalls over 0.5 s since up: "
                 f"{size.stalls.get('count', '?')}, worst {size.stalls.get('worst_seconds', '?')}s")
    return lines


def lab_floor(mode: str, size: SizeFigures, allowed: float) -> str:
    """What the lab's own CPU takes of the time a target allows. The lab runs every node's
    pods, network and the probes' commands on this machine's cores, where a cluster runs them
    on its nodes: its CPU seconds over the cores are wall time no suite-side change below the
    lab's work can remove (asking the lab for less work can)."""
    cores = len(os.sched_getaffinity(0))
    used = statistics.median(f.lab_cpu for f in getattr(size, mode))
    floor = used / cores
    return (f"{mode} at {size.nodes} nodes: the lab used {used:.1f} CPU-s on {cores} cores, "
            f"at least {floor:.1f}s of wall time, of the {allowed:.1f}s the target allows"
            + ("; the lab alone exceeds it" if floor > allowed else ""))


def main(argv: list[str] | None = None) -> int:
    """Lines per size, then the ratios against their targets; exit 1 when one is missed or a
    healthy run failed a check."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, action="append", default=[],
                        help="lab size (repeat; default 3 and 100)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    # A SIGTERM ends the benchmark like Ctrl-C: the running lab is taken down on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sizes = sorted(args.nodes or [3, 100])
    results: list[SizeFigures] = []
    with tempfile.TemporaryDirectory(prefix="netdoctor-scale-") as tmp:
        for nodes in sizes:
            try:
                results.append(measure(nodes, args.runs, Path(tmp)))
            except LabDidNotStart as exc:
                print(f"{nodes} nodes: lab did not start: {exc}")
                return 1
            for line in describe(results[-1]):
                print(line, flush=True)
    ok = all(f.failed == 0 and f.exit_code == 0 for s in results
             for f in s.diagnose + s.validate)
    if len(results) > 1:
        small, large = results[0], results[-1]
        for mode, target in TARGETS.items():
            a = statistics.median(f.seconds for f in getattr(small, mode))
            b = statistics.median(f.seconds for f in getattr(large, mode))
            met = b <= target * a
            ok &= met
            print(f"{mode}: {large.nodes} nodes / {small.nodes} nodes = {b / a:5.2f}x "
                  f"(target <= {target:g}x): {'met' if met else 'MISSED'}")
            print("  " + lab_floor(mode, large, target * a))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
