"""Start labs and run ``pytest -m diagnose`` against them as a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAB_EXTERNAL_DNS = "192.168.4.1"  # the lab's upstream resolver; never a real outside address
RUN_TIMEOUT = 120.0


def lab_cli(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """``python -m netdoctor.cli lab ARGS`` from the repository."""
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", "lab", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Lab:
    """A running lab in its own state directory."""

    state_dir: Path

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""
        return self.state_dir / "kubeconfig"

    def fault(self, action: str, name: str) -> None:
        """Inject or clear a fault."""
        done = lab_cli("fault", action, name, "--state-dir", str(self.state_dir))
        assert done.returncode == 0, done.stderr

    def down(self) -> None:
        """Remove the lab."""
        lab_cli("down", "--state-dir", str(self.state_dir))


class LabDidNotStart(RuntimeError):
    """``lab up`` failed; the message is the lab's own."""


def lab_status(lab: Lab) -> dict[str, Any]:
    """``lab status --json``."""
    done = lab_cli("status", "--json", "--state-dir", str(lab.state_dir))
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def lab_requests(lab: Lab) -> dict[str, int]:
    """The lab API server's request counts so far, by ``verb resource``."""
    counts: dict[str, int] = lab_status(lab).get("requests", {})
    return counts


def lab_up(state_dir: Path, scenario: str, workers: int = 2, *extra: str,
           profile: str | None = None) -> Lab:
    """Start a lab (of ``profile``, default the lab's own; ``extra``: more ``lab up`` options)
    or fail with the lab's own message."""
    done = lab_cli("up", "--state-dir", str(state_dir), "--scenario", scenario,
                   "--workers", str(workers), *(["--profile", profile] if profile else []),
                   *extra)
    if done.returncode != 0:
        lab_cli("down", "--state-dir", str(state_dir))
        raise LabDidNotStart(f"lab up --scenario {scenario} failed: {done.stderr.strip()[-800:]}")
    return Lab(state_dir)


@dataclass
class Run:
    """One finished ``pytest -m diagnose`` subprocess."""

    returncode: int
    output: str
    summary: dict[str, Any]
    seconds: float

    @property
    def present(self) -> set[str]:
        """Signals the run raised."""
        return {k for k, v in self.summary.get("signals", {}).items() if v}


def diagnose_argv(kubeconfig: Path | str, report_dir: Path, *extra: str) -> list[str]:
    """The command line a user would type, with lab-safe external targets."""
    return [sys.executable, "-m", "pytest", "-m", "diagnose", f"--kubeconfig={kubeconfig}",
            f"--external-dns={LAB_EXTERNAL_DNS}", f"--report-dir={report_dir}",
            "--overwrite-report", "-q", "-p", "no:cacheprovider", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    for key in [k for k in env if k.startswith("NETDOCTOR_") or k == "KUBECONFIG"]:
        del env[key]
    return env


def suite_argv(kubeconfig: Path | str, report_dir: Path, *extra: str) -> list[str]:
    """Every check (diagnose and validate), as ``pytest --remediate`` is meant to run."""
    argv = diagnose_argv(kubeconfig, report_dir, *extra)
    at = argv.index("diagnose")
    return argv[:at - 1] + argv[at + 1:]


def run_diagnose(kubeconfig: Path | str, report_dir: Path, *extra: str,
                 argv: list[str] | None = None, timeout: float = RUN_TIMEOUT) -> Run:
    """Run the suite (``argv``, by default ``pytest -m diagnose``) to completion and read
    its ``summary.json``."""
    shutil.rmtree(report_dir, ignore_errors=True)
    started = time.monotonic()
    done = subprocess.run(argv or diagnose_argv(kubeconfig, report_dir, *extra), cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.monotonic() - started
    path = report_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    return Run(done.returncode, done.stdout + done.stderr, summary, seconds)


def start_diagnose(kubeconfig: Path, report_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """Start the suite without waiting (for interrupt tests)."""
    return subprocess.Popen(diagnose_argv(kubeconfig, report_dir, *extra), cwd=REPO,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def interrupt(proc: subprocess.Popen[str], sig: int = signal.SIGINT, wait: float = 60.0
              ) -> tuple[int, str]:
    """Send ``sig`` and collect the output."""
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=wait)
    return proc.returncode, out


def probe_objects(kubeconfig: Path) -> list[str]:
    """Every namespace, pod and Lease labelled as netdoctor's, of any run, live or dead."""
    import asyncio

    from netdoctor.cluster.client import Target, connect
    from netdoctor.cluster.leases import LEASE_NAMESPACE

    async def look() -> list[str]:
        cluster = await connect(Target(kubeconfig, None))
        selector = "app.kubernetes.io/managed-by=netdoctor"
        found = [f"namespace {o['metadata']['name']}"
                 for o in await cluster.list("namespaces", selector=selector)]
        found += [f"pod {o['metadata']['namespace']}/{o['metadata']['name']}"
                  for o in await cluster.list("pods", selector=selector)]
        found += [f"lease {LEASE_NAMESPACE}/{o['metadata']['name']}" for o in
                  await cluster.list("leases", namespace=LEASE_NAMESPACE, selector=selector)]
        return found

    return asyncio.run(look())
