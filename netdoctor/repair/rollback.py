"""``netdoctor rollback RUN_ID``: undo a remediation run, newest change first, then diagnose.

The run's ``undo.json`` (found under ``--report-dir``) lists every change it applied with
how to revert it: node commands run through a writable node agent (they restore files,
tables and sysctls from ``/var/backups/netdoctor/<run-id>/`` on that node), API objects are
patched back to their snapshot or, when the run created them, deleted. Evictions and
restarts made new pods; the objects are restored, the old pods are not. Each revert is an
Event (reason ``NetdoctorRemediation``) on what it touched; ``rollback.json`` next to
``undo.json`` says what was undone and what failed. Then ``pytest -m diagnose`` runs
against the same cluster to show the state the rollback restored.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from netdoctor.cluster.client import Target
from netdoctor.cluster.leases import (
    LEASE_NAMESPACE,
    REMEDIATION_LEASE,
    Heartbeat,
    release_now,
    run_lease_name,
)
from netdoctor.plugin.options import DEFAULT_PROBE_IMAGE, parse_image
from netdoctor.plugin.repairresult import EXIT_REFUSED
from netdoctor.plugin.state import new_run_id
from netdoctor.repair.live import LiveContext, LiveOptions
from netdoctor.repair.runner import RemediationLog
from netdoctor.repair.undo import find_undo, read_undo, undo_one

DIAGNOSE_TIMEOUT = 600.0
SETUP_TIMEOUT = 120.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``netdoctor rollback``."""
    p = sub.add_parser("rollback", help="undo the changes of a --remediate run, then diagnose",
                       description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("run_id", metavar="RUN_ID", help="the run id of the --remediate run")
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    p.add_argument("--context", default=None, help="kubeconfig context to use")
    p.add_argument("--report-dir", type=Path, default=Path("reports"),
                   help="where the run's reports are (searched for its undo.json)")
    p.add_argument("--node-probe-image", default=DEFAULT_PROBE_IMAGE,
                   help="pinned image for the node agents that revert node changes")
    p.add_argument("--no-diagnose", action="store_true",
                   help="do not run pytest -m diagnose afterwards")
    p.add_argument("--diagnose-option", action="append", default=[], metavar="OPTION",
                   help="an option for the diagnose run afterwards, e.g. "
                        "--diagnose-option=--external-dns=192.0.2.53 (repeatable)")


def run(args: argparse.Namespace) -> int:
    """Undo the run; 0 when every change was reverted, 1 when one failed, 2 for bad input,
    6 while another repair holds the remediation Lease."""
    path = find_undo(args.report_dir, args.run_id)
    if path is None:
        print(f"netdoctor rollback: no undo.json of run {args.run_id} under {args.report_dir}",
              file=sys.stderr)
        return 2
    try:
        image = parse_image(args.node_probe_image)
    except ValueError as exc:
        print(f"netdoctor rollback: --node-probe-image: {exc}", file=sys.stderr)
        return 2
    undos = read_undo(path)
    log = RemediationLog(path.parent / "rollback.log")
    log.write(f"rollback of run {args.run_id}: {len(undos)} record(s) from {path}")
    ctx = LiveContext(LiveOptions(args.kubeconfig, args.context, new_run_id(), image, True,
                                  SETUP_TIMEOUT), frozenset(), (), log)
    done: list[str] = []
    failed: list[str] = []
    beat = Heartbeat(Target(args.kubeconfig, args.context), ctx.options.run_id)
    try:
        ctx.connect()
        # A rollback changes the cluster as a repair does: never while another one runs;
        # its node agents belong to a live run for as long as it lasts.
        holder = ctx.acquire_lease()
        if holder:
            print(f"netdoctor rollback: another repair is running (Lease {LEASE_NAMESPACE}/"
                  f"{REMEDIATION_LEASE} held by {holder}): run again when it has ended",
                  file=sys.stderr)
            return EXIT_REFUSED
        beat.hold(REMEDIATION_LEASE, "remediation")
        run_lease = run_lease_name(ctx.options.run_id)
        if not ctx.acquire_lease(run_lease, "run"):
            beat.hold(run_lease, "run")
        for undo in reversed(undos):
            try:
                done.append(undo_one(ctx, undo))
                log.write(f"undone {undo.step}: {done[-1]}")
            except Exception as exc:  # one failed revert must not hide the others
                failed.append(f"{undo.step} {undo.target}: {type(exc).__name__}: {exc}")
                log.write(f"FAILED undo {failed[-1]}")
    finally:
        for problem in ctx.close():
            print(f"netdoctor rollback: cleanup: {problem}", file=sys.stderr)
        beat.stop()
        for name in beat.names:
            if problem := release_now(beat.target, name):
                print(f"netdoctor rollback: cleanup: {problem}", file=sys.stderr)
    (path.parent / "rollback.json").write_text(json.dumps(
        {"run_id": args.run_id, "undone": done, "failed": failed}, indent=1) + "\n")
    for line in done:
        print(f"undone: {line}")
    for line in failed:
        print(f"FAILED: {line}")
    print(f"rollback of {args.run_id}: {len(done)} undone, {len(failed)} failed "
          f"({path.parent / 'rollback.json'})")
    if not args.no_diagnose:
        _diagnose(args, path.parent / "rollback-diagnose")
    return 1 if failed else 0


def _diagnose(args: argparse.Namespace, report_dir: Path) -> None:
    from netdoctor.run import pytest_argv  # the installed checks, from any folder

    argv = [sys.executable, "-P", "-m", "pytest",
            *pytest_argv("diagnose", [f"--report-dir={report_dir}", "--overwrite-report", "-q"],
                         Path.cwd())]
    argv += [f"--kubeconfig={args.kubeconfig}"] if args.kubeconfig else []
    argv += [f"--context={args.context}"] if args.context else []
    argv += list(args.diagnose_option)
    try:
        subprocess.run(argv, capture_output=True, text=True, timeout=DIAGNOSE_TIMEOUT,
                       check=False)
    except subprocess.TimeoutExpired:
        print(f"diagnose after the rollback: no result within {DIAGNOSE_TIMEOUT:g}s")
        return
    summary = report_dir / "summary.json"
    if not summary.exists():
        print(f"diagnose after the rollback wrote no summary ({report_dir})")
        return
    data = json.loads(summary.read_text())
    causes = [f"{c.get('id')}@{c.get('node') or '-'}" for c in data.get("root_causes") or []]
    print(f"diagnose after the rollback: score {data.get('score')}, causes: "
          f"{', '.join(causes) or 'none'} ({summary})")
