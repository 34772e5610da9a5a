"""A validate run measures only what its selected checks read: node facts alone deploy no echo
workload and run no path, DNS alone skips the pod paths, one node's checks measure from that
node and its paths only; the full run measures everything."""

from __future__ import annotations

from pathlib import Path

from selftests.e2e.labrun import Lab, lab_requests, probe_objects
from selftests.e2e.validaterun import Validated, run_validate

ECHO_CREATES = "create deployments"
EXECS = "get pods/exec"


def _run(lab: Lab, report_dir: Path, marker: str, *extra: str
         ) -> tuple[Validated, dict[str, int]]:
    """The run and the API requests it caused, by ``verb resource``."""
    before = lab_requests(lab)
    run = run_validate(lab, report_dir, marker, *extra)
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


def test_dns_alone_one_node_then_everything(healthy_lab: Lab, tmp_path: Path) -> None:
    dns, dns_asked = _run(healthy_lab, tmp_path / "dns", "validate and dns")
    _all_passed(dns)
    assert dns.summary["validate_measured"]["measured"] == ["dns"]
    assert "from_nodes" not in dns.summary["validate_measured"]  # every node's lookups
    assert {t.split("::")[1].split("[")[0] for t in dns.outcomes("passed")} == {"test_dns"}
    assert dns_asked.get(ECHO_CREATES, 0) > 0, dns_asked  # the echo Service's name is looked up

    one, one_asked = _run(healthy_lab, tmp_path / "one", "validate", "-k", "worker-1")
    _all_passed(one)
    scoped = one.summary["validate_measured"]
    assert scoped["from_nodes"] == ["worker-1"], scoped
    assert scoped["narrowed"]
    assert "per-node measurements from 1 of 3 nodes" in one.output
    assert all("worker-1" in t for t in one.outcomes("passed"))
    paths = [t for t in one.outcomes("passed") if "test_pod_ping[" in t]
    assert paths
    assert f"pair measurements for {len(paths)} of 9 node pairs" in scoped["statement"], scoped

    full, full_asked = _run(healthy_lab, tmp_path / "full", "validate")
    _all_passed(full)
    assert full.summary["validate_measured"]["not_measured"] == []
    assert "left out" not in full.output
    # The pod paths, MTU, egress, Service and NodePort measurements are commands of their own.
    assert dns_asked[EXECS] < full_asked[EXECS], (dns_asked, full_asked)
    assert one_asked[EXECS] < full_asked[EXECS], (one_asked, full_asked)
    assert probe_objects(healthy_lab.kubeconfig) == []


def test_diagnose_one_node(healthy_lab: Lab, tmp_path: Path) -> None:
    """``-m diagnose -k worker-1``: lookups from worker-1 alone, pings only on its pairs."""
    one, _ = _run(healthy_lab, tmp_path / "one", "diagnose", "-k", "worker-1")
    _all_passed(one)
    scoped = one.summary["diagnose_measured"]
    assert scoped["from_nodes"] == ["worker-1"], scoped
    pairs = [t for t in one.outcomes("passed") if "test_pod_to_pod[" in t]
    assert pairs
    assert f"lookups from 1 of 3 nodes, pings for {len(pairs)} of 6 node pairs" \
        in scoped["statement"], scoped
    assert scoped["statement"] in one.output
    assert probe_objects(healthy_lab.kubeconfig) == []


def test_a_selection_without_probes_still_reads_node_facts(healthy_lab: Lab, tmp_path: Path
                                                           ) -> None:
    """``-m "diagnose and services"`` starts no probe pod: the node probes read for the root
    causes create the run's namespace themselves (they used to wait for the probes to, for
    the whole setup timeout, then fail)."""
    run, asked = _run(healthy_lab, tmp_path / "svc", "diagnose and services",
                      "--setup-timeout=20")
    _all_passed(run)
    assert "root_causes_not_evaluated" not in run.summary, run.summary
    assert asked.get("create namespaces") == 1, asked
    assert asked.get("create pods", 0) >= 3, asked  # a node probe on each of the 3 nodes
    assert probe_objects(healthy_lab.kubeconfig) == []
