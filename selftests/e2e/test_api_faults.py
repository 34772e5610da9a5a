"""The API server goes away or misbehaves during a run on a healthy lab: never a confident
wrong answer (verdict none or inconclusive, never partial or confirmed, no cause invented)
and nothing of the run left once the API is back.

One 150 s outage (the expensive case, right after the probes are up: measurements and
cleanup both meet it) and 30 s outages at two other points. More points and lengths, and a
flaky, throttling or slow API for a whole run: ``benchmarks/api_faults.py``; the client
against each API fault: ``selftests/lab/test_api_faults.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from netdoctor.plugin.scoring import EXIT_INCONCLUSIVE
from selftests.e2e.apipause import LAB_VAR, PAUSE_VAR
from selftests.e2e.labrun import Lab, Run, lab_cli, probe_objects, run_diagnose

HONEST = {"none", "inconclusive"}
EXIT_FOR = {"none": 0, "inconclusive": EXIT_INCONCLUSIVE}


def _run_with(lab: Lab, report_dir: Path, env: dict[str, str], timeout: float) -> Run:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return run_diagnose(lab.kubeconfig, report_dir, "-p", "selftests.e2e.apipause",
                            "-W", "ignore::UserWarning", timeout=timeout)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _assert_honest(run: Run, lab: Lab) -> None:
    verdict = run.summary.get("verdict")
    assert verdict in HONEST, run.output
    assert run.returncode == EXIT_FOR[verdict], run.output
    assert run.summary.get("root_causes") == [], run.output
    assert run.summary.get("leftovers") == [], run.output
    assert "Traceback" not in run.output, run.output
    if verdict == "inconclusive":
        assert run.summary["undecided"], run.summary
        assert run.summary["not_observed"], run.summary
        assert "undecided: " in run.output, run.output
    lab.fault("clear", "api-down")  # the API is back (if the run had not waited for it)
    assert probe_objects(lab.kubeconfig) == [], run.output


@pytest.mark.parametrize(("point", "seconds"), [
    ("connected", 30), ("probes-created", 30), ("probes-ready", 150),
], ids=["after-connect-30s", "probes-created-30s", "probes-ready-150s"])
def test_api_outage(healthy_lab: Lab, tmp_path: Path, point: str, seconds: int) -> None:
    env = {PAUSE_VAR: f"{point}:{seconds}", LAB_VAR: str(healthy_lab.state_dir)}
    run = _run_with(healthy_lab, tmp_path / "r", env, timeout=seconds + 240)
    _assert_honest(run, healthy_lab)
    # The outage really happened: requests were held that long; the run then ended within
    # its deadlines (cleanup waits for the API to come back).
    assert seconds <= run.seconds < seconds + 120, f"{run.seconds:.0f}s"
    if seconds > 60:  # longer than a read keeps retrying: something was not measured
        assert run.summary["verdict"] == "inconclusive", run.output
        assert run.summary["api_problems"], run.summary
        assert "netdoctor: API problem: " in run.output, run.output


def test_api_fault_cli(healthy_lab: Lab) -> None:
    state = ["--state-dir", str(healthy_lab.state_dir)]
    listed = lab_cli("fault", "list", *state).stdout
    assert all(name in listed for name in ("api-slow", "api-throttle", "api-flaky", "api-down"))
    for bad in (["ip-forward-off", "--seconds", "5"], ["api-down", "--seconds", "0"],
                ["api-slow", "--node", "worker-1"]):
        done = lab_cli("fault", "inject", *bad, *state)
        assert done.returncode != 0, bad
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    started = time.monotonic()
    done = lab_cli("fault", "inject", "api-down", "--seconds", "6", *state)
    assert done.returncode == 0, done.stderr
    assert "fault api-down" in lab_cli("status", *state).stdout  # the control socket answers
    while "api-down" in lab_cli("status", *state).stdout and time.monotonic() - started < 20:
        time.sleep(0.5)
    assert time.monotonic() - started >= 6
    assert "api-down" not in lab_cli("status", *state).stdout  # over by itself
    assert probe_objects(healthy_lab.kubeconfig) == []  # and the API answers again
