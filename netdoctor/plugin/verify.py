"""The verification run of ``--remediate``: the failing checks again, in a child pytest.

The child is a run of its own (its own probes, namespace and Lease) whose run id the parent
chooses (:data:`RUN_ID_ENV`), so that whatever the child leaves can be found and removed.
When the parent is interrupted while the child runs, the child is interrupted too (it then
removes its own objects, as any interrupted run does); a child that does not end within
:data:`CHILD_GRACE` seconds is killed and the parent removes the child's objects itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.cluster import leases
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Target, connect
from netdoctor.plugin.options import OPTIONS, Settings
from netdoctor.plugin.state import RUN_ID_ENV
from netdoctor.repair.runner import RemediationLog

# Options that steer remediation or the reports; everything else is passed on to the
# verification run so that it looks at the same cluster the same way.
_NOT_PASSED = {"lab", "report_dir", "overwrite_report", "cleanup_only", "remediate", "dry_run",
               "force", "non_interactive", "yes", "max_changes", "max_changes_per_node",
               "allow_control_plane", "fix_selectors", "retry_failed", "flannel_manifest",
               "dns_fallback"}
VERIFY_TIMEOUT = 600.0
CHILD_GRACE = 30.0


@dataclass
class Verification:
    """What the verification run found."""

    score: int | None
    description: str
    still_failing: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    interrupted: str = ""
    """The signal that stopped it ("" when it ran to its end)."""


def verification_argv(settings: Settings, nodeids: Sequence[str], report_dir: Path,
                      inipath: Path | None) -> list[str]:
    """The command that runs the failing checks again, against the same cluster.

    Example:
        >>> from netdoctor.plugin.options import resolve_settings
        >>> s = resolve_settings({"kubeconfig": "/k", "remediate": True}, {}, {}, cwd=Path("/"))
        >>> verification_argv(s, ["t.py::a"], Path("/r"), None)[3:6]
        ['t.py::a', '--kubeconfig=/k', '--report-dir=/r']
    """
    argv = [sys.executable, "-m", "pytest", *nodeids]
    for spec in OPTIONS:
        value = getattr(settings, spec.name)
        if spec.name in _NOT_PASSED or value == spec.default or value is None:
            continue
        if spec.kind == "flag":
            argv += [spec.flag] if value else []
        elif spec.kind == "list":
            argv += [f"{spec.flag}={item}" for item in value]
        else:
            argv.append(f"{spec.flag}={value}")
    argv += [f"--report-dir={report_dir}", "--overwrite-report", "-q", "-p", "no:cacheprovider"]
    return argv + ([f"-c={inipath}"] if inipath else [])


def failing_functions(results: Sequence[Any]) -> list[str]:
    """Node ids of failed checks without their parameters (the nodes may have changed)."""
    ids = [r.nodeid.split("[", 1)[0] for r in results if r.outcome in ("failed", "error")]
    return list(dict.fromkeys(ids))


def child_run_id(parent: str, round_no: int) -> str:
    """``<parent>-v<round>``: the child's objects are recognisably the parent's."""
    return f"{parent}-v{round_no}"


def run_verification(argv: Sequence[str], env: dict[str, str], cwd: Path, summary_path: Path,
                     log: RemediationLog, timeout: float = VERIFY_TIMEOUT) -> Verification:
    """Run ``argv`` and read its ``summary.json``; forward an interrupt to the child."""
    log.write(f"verify: {' '.join(argv[1:])}")
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        log.write(f"verify: no result within {timeout:g}s")
        return Verification(None, "verification timed out")
    except KeyboardInterrupt as exc:
        why = str(exc) or "SIGINT"
        log.write(f"verify: interrupted ({why}); interrupting the verification run")
        code = _stop(proc)
        log.write(f"verify: the verification run ended (exit {code})")
        return Verification(None, f"verification interrupted ({why})", interrupted=why)
    if not summary_path.exists():
        log.write(f"verify: exit {proc.returncode}, no summary: {err[-300:]}")
        return Verification(None, f"verification run failed (exit {proc.returncode})")
    after = json.loads(summary_path.read_text())
    present = [k for k, v in after.get("signals", {}).items() if v]
    still = [t["nodeid"] for t in after.get("tests", [])
             if t.get("outcome") in ("failed", "error")]
    log.write(f"verify: score {after.get('score')} ({', '.join(present) or 'no signals'}); "
              f"{len(still)} check(s) still failing" + (f": {', '.join(still)}" if still
                                                        else ""))
    ran = len(after.get("tests", []))
    return Verification(int(after.get("score", 0)),
                        f"{ran} check(s), {len(still)} still failing: {summary_path}",
                        still, after)


def _stop(proc: subprocess.Popen[str]) -> int | None:
    """SIGINT (the child cleans up as an interrupted run), then SIGKILL after the grace.

    A second Ctrl-C while waiting is ignored: the child's cleanup is what keeps the cluster
    clean, and it is bounded.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main() else None
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=CHILD_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return proc.returncode


def remove_run(kubeconfig: Path | None, context: str | None, run_id: str) -> list[str]:
    """Remove every object labelled with ``run_id`` and its Lease; return the problems."""
    async def go() -> list[str]:
        cluster = await connect(Target(kubeconfig, context))
        problems = await pods.remove(cluster, pods.ProbeSet(f"netdoctor-{run_id}", run_id))
        await leases.release(cluster, leases.run_lease_name(run_id))
        return problems
    try:
        return asyncio.run(go())
    except Exception as exc:  # said in the log; the objects then show as leftovers
        return [f"{type(exc).__name__}: {exc}"]


def _main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def child_env(run_id: str) -> dict[str, str]:
    """The child's environment: ours without netdoctor settings (the command line carries
    them), never a second repair, and its run id."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NETDOCTOR_") or k == "NETDOCTOR_KUBECONFIG"}
    env["NETDOCTOR_REMEDIATE"] = "0"
    env[RUN_ID_ENV] = run_id
    return env
