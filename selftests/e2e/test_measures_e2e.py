"""A validate run measures only what its selected checks read: node facts alone deploy no echo
workload and run no path, DNS alone skips the pod paths; the full run measures everything."""

from __future__ import annotations

from pathlib import Path

from selftests.e2e.labrun import Lab, lab_requests, probe_objects
from selftests.e2e.validaterun import Validated, run_validate

ECHO_CREATES = "create deployments"
EXECS = "get pods/exec"


def _run(lab: Lab, report_dir: Path, marker: str) -> tuple[Validated, dict[str, int]]:
    """The run and the API requests it caused, by ``verb resource``."""
    before = lab_requests(lab)
    run = run_validate(lab, report_dir, marker)
    after = lab_requests(lab)
    return run, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _all_passed(run: Validated) -> None:
    assert run.returncode == 0, run.output[-3000:]
    assert run.outcomes("passed"), run.output[-3000:]
    assert not run.outcomes("failed"), run.output[-3000:]
    assert not run.outcomes("error"), run.output[-3000:]


def test_node_facts_alone(healthy_lab: Lab, tmp_path: Path) -> None:
    run, asked = _run(healthy_lab, tmp_path / "r", "validate and node")
    _all_passed(run)
    assert run.summary["validate_measured"]["measured"] == []
    assert "dns" in run.summary["validate_measured"]["not_measured"]
    assert "validate measured: node facts, pods and Services only" in run.output
    assert asked.get(ECHO_CREATES, 0) == 0, asked  # no echo workload
    assert probe_objects(healthy_lab.kubeconfig) == []


def test_dns_alone_then_everything(healthy_lab: Lab, tmp_path: Path) -> None:
    dns, dns_asked = _run(healthy_lab, tmp_path / "dns", "validate and dns")
    _all_passed(dns)
    assert dns.summary["validate_measured"]["measured"] == ["dns"]
    assert {t.split("::")[1].split("[")[0] for t in dns.outcomes("passed")} == {"test_dns"}
    assert dns_asked.get(ECHO_CREATES, 0) > 0, dns_asked  # the echo Service's name is looked up

    full, full_asked = _run(healthy_lab, tmp_path / "full", "validate")
    _all_passed(full)
    assert full.summary["validate_measured"]["not_measured"] == []
    assert "left out" not in full.output
    # The pod paths, MTU, egress, Service and NodePort measurements are commands of their own.
    assert dns_asked[EXECS] < full_asked[EXECS], (dns_asked, full_asked)
    assert probe_objects(healthy_lab.kubeconfig) == []
