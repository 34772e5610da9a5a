"""Path faults end to end: ``pytest -m "diagnose or validate"`` ranks the real cause first.

One lab (3 nodes, two DNS replicas) serves the module: each case injects a path fault,
runs the suite as a user would, checks that the fault shows as failing checks, that the
top root cause names it with the right node, peer or subject, and that every failed or
flaky check is explained by a ranked cause (``unexplained`` empty), then clears it. A
healthy run first: no root cause, nothing unexplained.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netdoctor.lab.pathfaults import PATH_FAULTS
from selftests.e2e.labrun import Lab, lab_cli, lab_up
from selftests.e2e.validaterun import Validated, run_validate

MARKER = "diagnose or validate"
SETTLE_DEADLINE = 60.0  # a fresh lab's Service rules may trail its Ready pods by a moment
W1, W2, CP = "worker-1", "worker-2", "control-plane"
REPLICA = "<the DNS replica on the fault's node>"


@dataclass(frozen=True)
class PathCase:
    """A fault, where it strikes, the checks that must fail, and the cause to rank first.

    ``subject`` is a regular expression the cause's subject must match (the firewall rule),
    or :data:`REPLICA` for ``namespace/pod`` of the DNS replica on ``node``.
    """

    fault: str
    node: str
    peer: str | None
    shows: tuple[str, ...]  # test ids (as printed) among the failed or flaky checks
    cause: str
    cause_node: str | None
    cause_peer: str | None = None
    subject: str | None = None
    unordered: bool = False  # the cause may name node and peer either way round


PAIR_SHOWS = (f"test_pod_ping[{W1}->{W2}]", f"test_pod_ping[{W2}->{W1}]")
# The DNS replicas run on the control plane and worker-1 (checked by the fixture): the
# node faults strike worker-2, which holds none, so no replica's own traffic is involved.
CASES = (
    PathCase("vxlan-fdb-stale", W1, W2, PAIR_SHOWS, "vxlan-fdb-stale", W1, W2),
    PathCase("neigh-stale", W1, W2, PAIR_SHOWS, "vxlan-neighbor-stale", W1, W2),
    PathCase("route-missing", W1, W2, PAIR_SHOWS, "pod-route-missing", W1, W2),
    PathCase("firewall-vxlan", W1, W2, PAIR_SHOWS, "host-firewall", W1, W2,
             subject=r"(?=.*\b8472\b)(?=.*192\.168\.4\.12\b)"),
    # Dropped on the underlay, outside both nodes: no node fact differs, so the cause is
    # the localised pair itself (either node may be named first).
    PathCase("underlay-vxlan-drop", W1, W2, PAIR_SHOWS, "path-unexplained", W1, W2,
             unordered=True),
    PathCase("masquerade-missing", W2, None, (f"test_egress_http[{W2}]",),
             "masquerade-missing", W2),
    PathCase("underlay-mtu", W2, None, (f"test_pod_mtu[{W1}->{W2}]", f"test_pod_mtu[{W2}->{W1}]"),
             "mtu-mismatch", W2),
    PathCase("firewall-nodeport", W2, None, (f"test_node_port[{CP}->{W2}]",), "host-firewall",
             W2, subject=r"30000[:-]32767"),
    PathCase("firewall-dns", W2, None, (f"test_cluster_dns_answers[{W2}]",
                                        f"test_dns[{W2}-external]"),
             "host-firewall", W2, subject=r"\bdport 53\b"),
    PathCase("dns-replica-mute", W1, None, (f"test_dns[{W2}-replica]",),
             "dns-replica-unresponsive", W1, subject=REPLICA),
)


def dns_replicas(lab: Lab) -> dict[str, str]:
    """node -> ``namespace/pod`` of each cluster DNS replica."""
    out = subprocess.run(["kubectl", "--kubeconfig", str(lab.kubeconfig), "get", "pods", "-n",
                          "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {p["spec"]["nodeName"]: f"kube-system/{p['metadata']['name']}"
            for p in json.loads(out)["items"]}


@pytest.fixture(scope="module")
def path_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 3-node lab with ``--dns-replicas 2`` whose first suite run is clean."""
    lab = lab_up(tmp_path_factory.mktemp("paths") / "lab", "healthy", 2, "--dns-replicas", "2")
    try:
        assert sorted(dns_replicas(lab)) == [CP, W1], dns_replicas(lab)
        yield lab
    finally:
        lab.down()


def fault(lab: Lab, action: str, case: PathCase) -> None:
    """``lab fault inject|clear`` of ``case`` on its node (and peer)."""
    args = ["fault", action, case.fault, "--state-dir", str(lab.state_dir), "--node", case.node,
            *(["--peer", case.peer] if case.peer else [])]
    done = lab_cli(*args)
    assert done.returncode == 0, done.stderr


def short(nodeid: str) -> str:
    """``tests/validate/test_x.py::test_y[a->b]`` -> ``test_y[a->b]``."""
    return nodeid.rsplit("::", 1)[-1]


def bad_checks(run: Validated) -> list[str]:
    """Node ids of the failed and flaky checks."""
    return run.outcomes("failed") + run.outcomes("flaky")


def assert_explained(run: Validated) -> None:
    """The invariant: every failed or flaky check is explained by a ranked cause."""
    explained = {t for c in run.summary.get("root_causes") or []
                 for t in c.get("explains_tests") or []}
    missing = [t for t in bad_checks(run) if t not in explained]
    assert missing == [], f"failed checks no cause explains: {missing}"
    assert run.summary.get("unexplained") == [], \
        f"unexplained: {run.summary.get('unexplained')!r}"


def test_every_path_fault_has_a_case() -> None:
    assert [c.fault for c in CASES] == [f.name for f in PATH_FAULTS]


def test_healthy_ranks_nothing(path_lab: Lab, tmp_path: Path) -> None:
    end = time.monotonic() + SETTLE_DEADLINE
    while True:
        run = run_validate(path_lab, tmp_path / "r", MARKER)
        if run.returncode == 0 or time.monotonic() > end:
            break
        time.sleep(2)
    assert run.summary.get("tests"), run.output[-3000:]
    assert bad_checks(run) == [], run.output[-3000:]
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary["root_causes"] == []
    assert run.summary.get("unexplained") == [], \
        f"unexplained: {run.summary.get('unexplained')!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.fault}[{c.node}"
                         f"{'->' + c.peer if c.peer else ''}]")
def test_path_fault_ranked(path_lab: Lab, case: PathCase, tmp_path: Path) -> None:
    subject = dns_replicas(path_lab).get(case.node) if case.subject == REPLICA else None
    fault(path_lab, "inject", case)
    try:
        run = run_validate(path_lab, tmp_path / "r", MARKER)
    finally:
        fault(path_lab, "clear", case)
    bad = [short(t) for t in bad_checks(run)]
    # The fault really shows: the checks on its path fail.
    assert set(case.shows) <= set(bad), f"{case.fault}: {bad}\n{run.output[-3000:]}"
    causes = run.summary.get("root_causes") or []
    assert causes, f"{case.fault}: no root cause; failing checks {bad}"
    top = causes[0]
    got = (top["id"], top["node"], top.get("peer"))
    want = (case.cause, case.cause_node, case.cause_peer)
    if case.unordered:
        got, want = (got[0], *sorted(map(str, got[1:]))), (want[0], *sorted(map(str, want[1:])))
    assert got == want, f"{case.fault}: top cause {json.dumps(top)[:1500]}"
    if case.subject == REPLICA:
        assert top.get("subject") == subject, top
    elif case.subject is not None:
        assert re.search(case.subject, top.get("subject") or ""), top
    assert_explained(run)
