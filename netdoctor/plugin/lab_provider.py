"""``--lab[=SCENARIO]``: provision the project's emulated cluster for one run.

This is the one place outside ``netdoctor.lab`` that knows about the lab. It runs
``netdoctor lab up`` into a temporary state directory, points the run at the lab's kubeconfig
and at the lab's "external" targets (the lab has no way out, and the suite's real-cluster
defaults must never be probed from it), and runs ``lab down`` when pytest unconfigures, which
also happens after Ctrl-C and SIGTERM (the plugin turns SIGTERM into KeyboardInterrupt).

Other throwaway clusters (kind, k3d, minikube) are created by their own CLIs and handed over
with the same kubeconfig/context conventions (``--kubeconfig``, ``--context``; docs/ci.md).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from netdoctor.plugin.state import get_state

LAB_UP_TIMEOUT = 180.0
LAB_DOWN_TIMEOUT = 60.0
_LAB = pytest.StashKey[Path]()


def _lab_cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", "lab", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def pytest_configure(config: pytest.Config) -> None:
    """Start the lab when ``--lab`` is given (not on xdist workers)."""
    state = get_state(config)
    settings = state.settings
    if settings.lab is None or hasattr(config, "workerinput"):
        return
    from netdoctor.lab.net.external import ROUTER_IP, WEB_IP

    state_dir = Path(tempfile.mkdtemp(prefix="netdoctor-lab-"))
    config.stash[_LAB] = state_dir
    try:
        profile = ["--profile", settings.lab_profile] if settings.lab_profile else []
        done = _lab_cli("up", "--state-dir", str(state_dir), "--scenario", settings.lab,
                        *profile, timeout=LAB_UP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _down(state_dir)
        raise pytest.UsageError(f"netdoctor: the lab did not start within {LAB_UP_TIMEOUT:g}s"
                                ) from None
    found = re.search(r"export KUBECONFIG=(\S+)", done.stdout)
    if done.returncode != 0 or not found:
        _down(state_dir)
        raise pytest.UsageError(f"netdoctor: --lab: {done.stderr.strip() or done.stdout}")
    given = settings.sources
    state.settings = dataclasses.replace(
        settings, kubeconfig=Path(found.group(1)), context=None,
        external_dns=settings.external_dns if given["external_dns"] != "default" else ROUTER_IP,
        external_url=settings.external_url if given["external_url"] != "default"
        else f"http://{WEB_IP}/")


def _down(state_dir: Path) -> None:
    try:
        _lab_cli("down", "--state-dir", str(state_dir), timeout=LAB_DOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"netdoctor: 'lab down' timed out; run it again: "
                         f"python -m netdoctor.cli lab down --state-dir {state_dir}\n")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Tear the lab down after everything else (probe cleanup needs it running)."""
    state_dir = config.stash.get(_LAB, None)
    if state_dir is not None:
        del config.stash[_LAB]
        _down(state_dir)
