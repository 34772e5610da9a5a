"""Every path fault breaks the path it names, with real packets, and clears exactly.

One lab (3 nodes, two DNS replicas, probe pods on every node) serves the module: each
case injects its fault, shows that the intended path fails while a control path still
works (ping, curl, dig from pod namespaces through the lab's exec), clears it, and
shows the path works again, so the next case starts healthy.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from netdoctor.lab.cli import LabError
from netdoctor.lab.cli import _control as _lab_control
from netdoctor.lab.pathfaults import PATH_FAULTS
from selftests.lab.labfixture import (
    ECHO_NODE_PORT,
    Cluster,
    LabCluster,
    cli,
    create_probes,
    lab_unavailable,
    new_state_dir,
    parallel,
    pod_is_ready,
    probe_name,
    started_lab,
    wait_until,
)

pytestmark = pytest.mark.lab
RECOVERY = 20.0
SETTLE = 10.0
DNS_SELECTOR = "k8s-app=kube-dns"
EXTERNAL_URL = "http://192.0.2.10/"  # the lab's "outside" web server (documentation range)
DF_LARGE, DF_SMALL = 1422, 1200  # the largest DF ping a 1450 pod MTU carries; a small one


@dataclass(frozen=True)
class Path:
    """One measured path: ``kind`` and its endpoints (nodes, or a replica's node)."""

    kind: str  # ping, df-large, df-small, egress, nodeport, dns, dns-replica
    src: str
    dst: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.src}" + (f"->{self.dst}" if self.dst else "")


@dataclass(frozen=True)
class Case:
    """A fault, where it is injected, the paths it must break and the ones it must not."""

    fault: str
    node: str
    peer: str | None
    breaks: tuple[Path, ...]
    control: tuple[Path, ...]


W1, W2, CP = "worker-1", "worker-2", "control-plane"
PAIR_BREAKS = (Path("ping", W1, W2), Path("ping", W2, W1))
PAIR_CONTROL = (Path("ping", W1, CP), Path("ping", W2, CP), Path("ping", CP, W1))
# The lab schedules the two DNS replicas on the least loaded nodes of an empty cluster:
# the control plane and worker-1 (checked by the fixture); worker-2 has none, so its node
# faults do not also take a replica's upstream away.
CASES = (
    *(Case(name, W1, W2, PAIR_BREAKS, PAIR_CONTROL)
      for name in ("vxlan-fdb-stale", "neigh-stale", "route-missing", "firewall-vxlan",
                   "underlay-vxlan-drop")),
    Case("masquerade-missing", W2, None, (Path("egress", W2),),
         (Path("egress", W1), Path("ping", W2, W1))),
    Case("underlay-mtu", W2, None, (Path("df-large", W1, W2), Path("df-large", CP, W2)),
         (Path("df-small", W1, W2), Path("df-large", W1, CP), Path("ping", W2, CP))),
    Case("firewall-nodeport", W2, None, (Path("nodeport", CP, W2),),
         (Path("nodeport", CP, W1), Path("ping", CP, W2))),
    Case("firewall-dns", W2, None, (Path("dns", W2),), (Path("dns", W1), Path("ping", W2, W1))),
    Case("dns-replica-mute", W1, None, (Path("dns-replica", CP, W1),),
         (Path("dns-replica", CP, CP), Path("dns-replica", W2, CP))),
)


@dataclass
class Lab:
    """The module's lab, its probes and where the DNS replicas run (node -> pod IP)."""

    cluster: Cluster
    replicas: dict[str, str]

    @property
    def lab(self) -> LabCluster:
        """The running lab."""
        return self.cluster.lab


@pytest.fixture(scope="module")
def pathlab(request: pytest.FixtureRequest) -> Lab:
    """A healthy 3-node lab with ``--dns-replicas 2`` and probe pods on every node."""
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"needs a machine that can host a lab: {reason}")
    lab = started_lab(new_state_dir("paths"), request, "--dns-replicas", "2")
    cluster = Cluster(lab, create_probes(lab))
    replicas = {p["spec"]["nodeName"]: p["status"]["podIP"]
                for p in lab.pods("kube-system", DNS_SELECTOR)}
    assert sorted(replicas) == [CP, W1], f"DNS replicas on {sorted(replicas)}"
    return Lab(cluster, replicas)


def _ok(lab: Lab, path: Path) -> Callable[[], bool]:
    """A check that is True when ``path`` works (one try, short deadlines)."""
    c, p = lab.lab, lab.cluster.probes
    src = probe_name(path.src)
    if path.kind == "ping":
        return lambda: c.ping(src, p.probe_ips[path.dst], count=1) == 0.0
    if path.kind in ("df-large", "df-small"):
        size = DF_LARGE if path.kind == "df-large" else DF_SMALL
        return lambda: c.exec(src, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", str(size),
                              p.probe_ips[path.dst]).returncode == 0
    if path.kind == "egress":
        return lambda: c.http(src, EXTERNAL_URL) == (0, "netdoctor lab web: ok\n")
    if path.kind == "nodeport":
        url = f"http://{p.node_ips[path.dst]}:{ECHO_NODE_PORT}/hostname"
        return lambda: c.http(src, url)[1].startswith("echo-")
    if path.kind == "dns":
        return lambda: c.dig(src, "kubernetes.default.svc.cluster.local") == (0, "10.96.0.1")
    if path.kind == "dns-replica":
        server = lab.replicas[path.dst]
        return lambda: c.dig(src, "kubernetes.default.svc.cluster.local", server) == \
            (0, "10.96.0.1")
    raise ValueError(f"unknown path kind {path.kind}")


NODE_STATE = (  # what a path fault may change on a node, read as the kernel shows it
    "ip route show", "ip neigh show dev flannel.1 nud permanent", "bridge fdb show dev flannel.1",
    "ip -o link show dev eth0", "iptables-nft-save", "iptables-legacy-save")
COUNTERS = re.compile(r"\[\d+:\d+\]|^#.*$", re.MULTILINE)


def _state(lab: Lab) -> dict[str, str]:
    """Every node's and the underlay router's forwarding and filtering state."""
    status = _control(lab.lab, "GET", "/status")
    where = {name: n["netns"] for name, n in status["nodes"].items()}
    cmds = {f"{name}: {cmd}": ["ip", "netns", "exec", ns, *cmd.split()]
            for name, ns in where.items() for cmd in NODE_STATE}
    cmds["router: nft list ruleset"] = ["ip", "netns", "exec", f"{status['prefix']}-rt", "nft",
                                        "list", "ruleset"]

    def read(argv: list[str]) -> Callable[[], str]:
        def run() -> str:
            out = COUNTERS.sub("", subprocess.run(argv, capture_output=True, text=True,
                                                  timeout=10, check=False).stdout)
            # Routes, neighbours and FDB entries are sets (a re-added entry may list in
            # another place); rule order matters.
            return out if "save" in argv[-1] or "nft" in argv else \
                "\n".join(sorted(out.splitlines()))
        return run
    return parallel({k: read(v) for k, v in cmds.items()})


def _measure(lab: Lab, paths: tuple[Path, ...]) -> dict[str, bool]:
    return parallel({str(path): _ok(lab, path) for path in paths})


def _wait_for(lab: Lab, case: Case, want_broken: bool, deadline: float) -> dict[str, bool]:
    """Measure until the fault's paths are broken (or work) and the controls work."""
    want = {**{str(p): not want_broken for p in case.breaks},
            **{str(p): True for p in case.control}}
    last: dict[str, bool] = {}

    def reached() -> bool:
        last.clear()
        last.update(_measure(lab, (*case.breaks, *case.control)))
        return last == want
    try:
        wait_until(reached, deadline, "the paths", interval=0.3)
    except AssertionError:
        raise AssertionError(f"{case.fault} on {case.node}: measured {last}, wanted "
                             f"{want}") from None
    return last


def test_every_path_fault_has_a_case() -> None:
    assert [c.fault for c in CASES] == [f.name for f in PATH_FAULTS]


def test_healthy_paths(pathlab: Lab) -> None:
    every = tuple({p for c in CASES for p in (*c.breaks, *c.control)})
    got = _measure(pathlab, every)
    assert all(got.values()), {k: v for k, v in got.items() if not v}


def _control(lab: LabCluster, method: str, path: str, body: dict[str, str | None] | None = None
             ) -> dict[str, Any]:
    """The lab's control socket, in process (the CLI's own client, without its start-up)."""
    return _lab_control(lab.state_dir, method, path, body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.fault}[{c.node}"
                         f"{'->' + c.peer if c.peer else ''}]")
def test_path_fault(pathlab: Lab, case: Case) -> None:
    lab = pathlab.lab
    before = _state(pathlab)
    entry = {"name": case.fault, "node": case.node, **({"peer": case.peer} if case.peer else {})}
    # One case goes through the CLI end to end; the others use its client in process.
    via_cli = case.fault == "route-missing"
    if via_cli:
        done = cli(lab.state_dir, "fault", "inject", case.fault, "--node", case.node,
                   "--peer", str(case.peer), timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"injected {case.fault} on {case.node} (peer {case.peer})"
        shown = cli(lab.state_dir, "status", timeout=60).stdout
        assert f"  fault {case.fault} {case.node} peer {case.peer}\n" in shown
    else:
        _control(lab, "POST", f"/faults/{case.fault}", {"node": case.node, "peer": case.peer})
    try:
        changed = _state(pathlab)
        assert _control(lab, "GET", "/status")["faults"] == [entry]
        _wait_for(pathlab, case, want_broken=True, deadline=SETTLE)
        if case.fault == "dns-replica-mute":
            muted = [p for p in lab.pods("kube-system", DNS_SELECTOR)
                     if p["spec"]["nodeName"] == case.node]
            assert muted
            assert all(pod_is_ready(p) and p["status"]["phase"] == "Running" for p in muted)
    finally:
        # Without --node: the clear finds where the fault is in force.
        if via_cli:
            assert lab.fault("clear", case.fault).startswith(f"cleared {case.fault} on ")
        else:
            _control(lab, "DELETE", f"/faults/{case.fault}", {})
    assert _control(lab, "GET", "/status")["faults"] == []
    _wait_for(pathlab, case, want_broken=False, deadline=RECOVERY)
    # The clear restores exactly what was there (the mute changes a pod's sandbox only).
    after = _state(pathlab)
    differs = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not differs, f"{case.fault}: state after clear differs: {differs}"
    if case.fault != "dns-replica-mute":
        assert changed != before, f"{case.fault} changed no node or underlay state"


def test_refusals(pathlab: Lab) -> None:
    lab = pathlab.lab
    # Through the CLI: one line, exit 1.
    done = cli(lab.state_dir, "fault", "inject", "firewall-dns", "--peer", W1, timeout=60)
    assert done.returncode == 1, done.stdout
    assert done.stderr.strip().splitlines() == [
        "netdoctor lab: firewall-dns is not a pair fault: --peer applies to pair faults only"]
    for body, words in (
            ({"name": "route-missing", "node": W1, "peer": W1}, "must differ"),
            ({"name": "route-missing", "node": None, "peer": "worker-9"}, "unknown peer"),
            ({"name": "dns-replica-mute", "node": W2, "peer": None}, "no DNS replica runs on")):
        name = str(body.pop("name"))
        with pytest.raises(LabError) as err:
            _control(lab, "POST", f"/faults/{name}", body)
        assert words in str(err.value)
        assert "\n" not in str(err.value)
    assert _control(lab, "GET", "/status")["faults"] == []
