"""Interrupted runs leave nothing behind; access problems end in one clear line."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from netdoctor.plugin.interrupts import EXIT_INTERRUPTED
from selftests.e2e.labrun import Lab, interrupt, probe_objects, run_diagnose, start_diagnose

PROBES_APPEAR = 30.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_removes_probes(healthy_lab: Lab, tmp_path: Path, sig: int) -> None:
    proc = start_diagnose(healthy_lab.kubeconfig, tmp_path / "r", "-p", "selftests.e2e.hold")
    end = time.monotonic() + PROBES_APPEAR
    seen: list[str] = []
    while not seen and time.monotonic() < end and proc.poll() is None:
        seen = probe_objects(healthy_lab.kubeconfig)
        time.sleep(0.2)
    assert seen, "the run never created its probes"
    time.sleep(0.5)  # the run is now inside a held check, probes in place
    code, out = interrupt(proc, sig)
    assert code == EXIT_INTERRUPTED, out
    assert "Traceback" not in out, out
    assert "verdict: interrupted" in out, out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["verdict"] == "interrupted", summary
    assert summary["interrupted"] == signal.Signals(sig).name, summary
    assert probe_objects(healthy_lab.kubeconfig) == [], out  # pods, namespace and Lease


def _with_server(source: Path, target: Path, server: str) -> Path:
    text = re.sub(r"server: \S+", f"server: {server}", source.read_text())
    target.write_text(text)
    return target


def _with_token(source: Path, target: Path, token: str) -> Path:
    target.write_text(re.sub(r"token: \S+", f"token: {token}", source.read_text()))
    return target


def _one_clear_line(run_output: str, *words: str) -> None:
    # Once: "ERROR: netdoctor: ..." before the run starts, or pytest's "!" banner when the
    # run is stopped later (RBAC refusing the probes).
    said = re.findall(r"^(?:ERROR: |.*_pytest\.outcomes\.Exit: )netdoctor: ", run_output,
                      re.MULTILINE)
    assert len(said) == 1, run_output
    assert run_output.count("Exit: netdoctor:") <= 1, run_output
    assert not re.search(r"^(FAILED|ERROR) ", run_output, re.MULTILINE), run_output
    for word in words:
        assert word in run_output.lower(), run_output
    assert "Traceback" not in run_output, run_output


def test_unreachable_api(healthy_lab: Lab, tmp_path: Path) -> None:
    kc = _with_server(healthy_lab.kubeconfig, tmp_path / "kc", "https://127.0.0.1:1")
    run = run_diagnose(kc, tmp_path / "r")
    assert run.returncode != 0
    _one_clear_line(run.output, "cannot reach the api server", "127.0.0.1:1")


def test_bad_kubeconfig_file(tmp_path: Path) -> None:
    bad = tmp_path / "kc"
    bad.write_text("this: [is not a kubeconfig\n")
    run = run_diagnose(bad, tmp_path / "r")
    assert run.returncode != 0
    _one_clear_line(run.output, "kubeconfig")


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    run = run_diagnose(tmp_path / "nope", tmp_path / "r")
    assert run.returncode != 0
    _one_clear_line(run.output, "does not exist")


def test_rejected_credentials(healthy_lab: Lab, tmp_path: Path) -> None:
    kc = _with_token(healthy_lab.kubeconfig, tmp_path / "kc", "expired-token")
    run = run_diagnose(kc, tmp_path / "r")
    assert run.returncode != 0
    _one_clear_line(run.output, "401")


def test_forbidden_viewer(healthy_lab: Lab, tmp_path: Path) -> None:
    viewer = healthy_lab.state_dir / "kubeconfig-viewer"
    run = run_diagnose(viewer, tmp_path / "r")
    assert run.returncode == 4, run.output
    _one_clear_line(run.output, "forbidden", "pods/exec")
    assert probe_objects(healthy_lab.kubeconfig) == []
