"""Interrupted repairs and concurrent runs, heavier than the CI tier.

For SIGINT and SIGTERM, each on a fresh incident lab: ``--remediate --yes`` interrupted at
every remediation.log line kind the run writes (planning, consent, each step's exec and
result, the verification), one after the other as an operator's runs would follow, then one
run to the end. Every interrupted run must end with exit status 8 and verdict
``interrupted``, within seconds, leaving nothing in the cluster; the last must repair.
Then ``--runs`` diagnose runs at once in one shared ``--probe-namespace`` on a healthy lab,
with a ``--cleanup-only`` while they are live: all must pass and nothing be left.

Run as root from the repository: ``python -m benchmarks.interrupts [--runs 4]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netdoctor.plugin.interrupts import EXIT_INTERRUPTED
from selftests.e2e.interruptrun import interrupt_at, namespaces, pods_by_run, wait_gone
from selftests.e2e.labrun import REPO, _env, diagnose_argv, lab_up, run_diagnose

POINTS = (
    ("planning", r"created node probe"),
    ("consent", r"remediation mode=applied: .*--yes"),
    ("first exec", r"exec node=\S+: set -e"),
    ("after a step", r"applied \S+ node="),
    ("verification", r"verify: -m pytest"),
    ("API step", r"patch \S+ \S+: \["),
    ("second exec", r"exec node=\S+: exit 0"),
)


def interrupted_repairs(sig: int, work: Path) -> bool:
    """The sequence on one incident lab; print a row per run; True when all held."""
    lab = lab_up(work / f"lab-{sig}", "problem-statement")
    ok = True
    try:
        reports = work / f"reports-{sig}"
        for point, pattern in POINTS:
            also = (lambda: any(n.endswith("-v1") for n in namespaces(lab))) \
                if point == "verification" else (lambda: True)
            run = interrupt_at(lab, reports, pattern, also, sig)
            left = wait_gone(lab)
            block = run.summary.get("remediation") or {}
            held = (not run.point_seen) or (
                run.returncode == EXIT_INTERRUPTED and run.summary.get("verdict") ==
                "interrupted" and not left and "Traceback" not in run.output)
            ok &= held
            applied = sum(1 for s in block.get("steps", []) if s["status"] == "applied")
            print(f"{signal.Signals(sig).name:8} {point:14} reached={run.point_seen!s:5} "
                  f"exit={run.returncode:<3} stop={run.stop_seconds:5.1f}s "
                  f"applied={applied} left={len(block.get('left', []))} "
                  f"objects={len(left)} {'ok' if held else 'FAILED'}")
        final = interrupt_at(lab, reports, None)
        repaired = final.returncode == 0 and not wait_gone(lab)
        ok &= repaired
        print(f"{signal.Signals(sig).name:8} {'to the end':14} exit={final.returncode} "
              f"verdict={final.summary.get('verdict')} {'ok' if repaired else 'FAILED'}")
    finally:
        lab.down()
    return ok


def concurrent(runs: int, work: Path) -> bool:
    """``runs`` diagnose runs in one shared namespace and a cleanup while they are live."""
    lab = lab_up(work / "lab-healthy", "healthy")
    try:
        subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "create", "namespace",
                        "nd-shared"], check=True, capture_output=True, timeout=30)
        gate = work / "gate"
        env = {**_env(), "SELFTEST_GATE": str(gate)}
        started = time.monotonic()
        procs = [subprocess.Popen(
            diagnose_argv(lab.kubeconfig, work / f"run-{i}", "-p", "selftests.e2e.gate",
                          "--probe-namespace=nd-shared"),
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(runs)]
        end = time.monotonic() + 120.0  # every run live, its probes in place
        while len(pods_by_run(lab)) < runs and time.monotonic() < end:
            time.sleep(0.2)
        live = pods_by_run(lab)
        cleanup = run_diagnose(lab.kubeconfig, work / "cleanup", "--cleanup-only")
        kept = pods_by_run(lab) == live
        gate.touch()
        codes = [p.wait(timeout=300) for p in procs]
        verdicts = [json.loads((work / f"run-{i}" / "summary.json").read_text())["verdict"]
                    for i in range(runs)]
        left = wait_gone(lab)
        ok = codes == [0] * runs and verdicts == ["none"] * runs and not left \
            and cleanup.returncode == 0 and kept and len(live) == runs
        print(f"{runs} concurrent runs + cleanup: exits {codes}, verdicts {verdicts}, "
              f"live runs' pods kept: {kept}, {time.monotonic() - started:.1f}s, "
              f"left {len(left)} {'ok' if ok else 'FAILED'}")
        return ok
    finally:
        lab.down()


def main() -> int:
    """Run both parts; exit 1 when any case did not hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="concurrent diagnose runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nd-bench-int-") as tmp:
        work = Path(tmp)
        ok = all([interrupted_repairs(signal.SIGINT, work),
                  interrupted_repairs(signal.SIGTERM, work),
                  concurrent(args.runs, work)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
