"""Interrupt ``pytest --remediate --yes`` at a chosen point, found by watching the run's own
remediation.log (and the cluster), never by a fixed sleep; and list what netdoctor left."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftests.e2e.labrun import REPO, Lab, _env, diagnose_argv
from selftests.e2e.repairrun import FALLBACK
from selftests.e2e.validaterun import LAB_URL

POINT_WAIT = 120.0
"""Seconds a run may take to reach the point it is interrupted at."""
STOP_WAIT = 60.0
"""Seconds an interrupted run may take to clean up and end (the issue: a few seconds)."""


def remediate_argv(lab: Lab, report_dir: Path) -> list[str]:
    """``pytest -m diagnose --remediate --yes`` writing into ``report_dir`` (kept between
    runs: the interrupted repair's record lives there)."""
    return [*diagnose_argv(lab.kubeconfig, report_dir), f"--external-url={LAB_URL}",
            "--remediate", "--yes", f"--dns-fallback={FALLBACK}"]


@dataclass
class Stopped:
    """An interrupted (or finished) run."""

    returncode: int
    output: str
    summary: dict[str, Any]
    log: str
    """What this run added to remediation.log."""
    point_seen: bool
    stop_seconds: float


def namespaces(lab: Lab) -> list[str]:
    """Names of the namespaces netdoctor made (any run)."""
    out = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "get", "namespaces",
                          "-l", "app.kubernetes.io/managed-by=netdoctor", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    return [o["metadata"]["name"] for o in json.loads(out.stdout)["items"]]


def netdoctor_objects(lab: Lab) -> list[str]:
    """Every namespace, pod and Lease labelled as netdoctor's, of any run, live or not."""
    out = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "get",
                          "namespaces,pods,leases", "-A", "-l",
                          "app.kubernetes.io/managed-by=netdoctor", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    return [f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
            for o in json.loads(out.stdout)["items"]]


def pods_by_run(lab: Lab) -> dict[str, list[str]]:
    """netdoctor's pods, ``namespace/name`` by run id."""
    out = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "get", "pods", "-A",
                          "-l", "app.kubernetes.io/managed-by=netdoctor", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    runs: dict[str, list[str]] = {}
    for pod in json.loads(out.stdout)["items"]:
        meta = pod["metadata"]
        runs.setdefault(meta["labels"]["netdoctor.io/run-id"], []).append(
            f"{meta['namespace']}/{meta['name']}")
    return runs


def wait_gone(lab: Lab, within: float = 30.0) -> list[str]:
    """netdoctor's objects, once none are left or ``within`` seconds passed (a namespace
    being deleted lists for a moment)."""
    end = time.monotonic() + within
    left = netdoctor_objects(lab)
    while left and time.monotonic() < end:
        time.sleep(0.5)
        left = netdoctor_objects(lab)
    return left


def interrupt_at(lab: Lab, report_dir: Path, pattern: str | None,
                 also: Callable[[], bool] = lambda: True, sig: int = signal.SIGINT) -> Stopped:
    """Start the run; once its new remediation.log lines match ``pattern`` and ``also()``
    holds, send ``sig``; collect what it wrote. ``pattern`` None: run to the end."""
    log_path = report_dir / "remediation.log"
    start = log_path.stat().st_size if log_path.exists() else 0
    (report_dir / "summary.json").unlink(missing_ok=True)
    proc = subprocess.Popen(remediate_argv(lab, report_dir), cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def new_log() -> str:
        if not log_path.exists():
            return ""
        with log_path.open() as f:
            f.seek(start)
            return f.read()

    seen = False
    if pattern is not None:
        end = time.monotonic() + POINT_WAIT
        while proc.poll() is None and time.monotonic() < end:
            if re.search(pattern, new_log()) and also():
                seen = True
                proc.send_signal(sig)
                break
            time.sleep(0.05)
    sent = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=STOP_WAIT if seen else 300.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    path = report_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    return Stopped(proc.returncode, out, summary, new_log(), seen, time.monotonic() - sent)
