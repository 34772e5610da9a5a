"""One judgment per node fact: the node check, the ranking and the remediation hook agree,
because all three read the same finding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import NodeInfo
from netdoctor.model import CheckResult, Place
from netdoctor.probes import nodechecks
from netdoctor.rootcause import nodefindings
from netdoctor.rootcause.facts import (
    SYSCTL_BRIDGE_NF,
    SYSCTL_IP_FORWARD,
    SYSCTL_RP_FILTER,
    NodeFacts,
)
from netdoctor.rootcause.facts import parse as parse_facts
from netdoctor.rootcause.model import NodeView, Observations
from netdoctor.rootcause.rules import explain
from remediation import cni, system

DATA = Path(__file__).parent.parent / "data" / "nodefacts"
GOOD = {SYSCTL_IP_FORWARD: "1", SYSCTL_BRIDGE_NF: "1", SYSCTL_RP_FILTER: "0"}
NODE = NodeView("w1", "192.168.4.11", "10.244.1.0/24")
INFO = NodeInfo("w1", True, False, (), "192.168.4.11", "10.244.1.0/24", True)

PROBES = ProbeSet("netdoctor-run1", "run1")


def kernel_facts(**sysctls: str) -> NodeFacts:
    return NodeFacts("w1", sysctls={**GOOD, **sysctls}, complete=True)


def failing_kernel_check() -> Observations:
    bad = CheckResult("t.py::test_kernel_prerequisites[w1]", "failed",
                      place=Place("kernel_prerequisites", "", "w1"))
    return Observations(nodes=(NODE,), checks=(bad,))


@pytest.mark.parametrize(("key", "value", "cause"), [
    (SYSCTL_IP_FORWARD, "0", "ip-forward-off"),
    (SYSCTL_BRIDGE_NF, "missing", "br-netfilter-off"),
    (SYSCTL_BRIDGE_NF, "0", "br-netfilter-off"),
    (SYSCTL_RP_FILTER, "1", "rp-filter-strict"),
    (SYSCTL_RP_FILTER, "2", None),
    (SYSCTL_IP_FORWARD, "1", None),
], ids=lambda v: str(v))
def test_check_ranking_and_repair_agree_on_kernel_switches(key: str, value: str,
                                                           cause: str | None) -> None:
    f = kernel_facts(**{key: value})
    flagged = bool(nodechecks.kernel(f, PROBES))
    obs = dataclasses.replace(failing_kernel_check(), facts={"w1": f})
    ranked = [c.id for c in explain(obs).causes]
    repaired = system._wrong(f)
    assert flagged is (cause is not None)
    assert ranked == ([cause] if cause else [])
    assert bool(repaired) is (cause is not None)
    if cause:
        assert [x.setting for x in nodefindings.kernel(f)] == list(repaired.items())
        assert "t.py::test_kernel_prerequisites[w1]" in explain(obs).causes[0].tests


def test_rp_filter_strict_is_repaired_to_loose() -> None:
    assert system._wrong(kernel_facts(**{SYSCTL_RP_FILTER: "1"})) == {SYSCTL_RP_FILTER: "2"}


@pytest.mark.parametrize(("cni0", "lease", "flagged", "repaired"), [
    (("10.244.1.1/24",), "10.244.1.1/24", False, False),
    (("10.88.0.1/16",), "10.244.1.1/24", True, True),    # cni0 is not the gateway
    (("10.244.1.7/24",), "10.244.1.1/24", True, True),   # inside podCIDR, still not it
    (("10.244.9.1/24",), "10.244.9.1/24", True, False),  # both outside: a lease problem
], ids=["healthy", "foreign-bridge", "wrong-gateway", "lease-outside"])
def test_check_ranking_and_repair_agree_on_the_bridge(cni0: tuple[str, ...], lease: str,
                                                      flagged: bool, repaired: bool) -> None:
    f = NodeFacts("w1", flannel_subnet=lease, addresses={"cni0": cni0}, complete=True)
    assert bool(nodechecks.bridge_subnet(f, INFO, PROBES)) is flagged
    bad = CheckResult("t.py::test_bridge_matches_podcidr[w1]", "failed",
                      place=Place("bridge_matches_podcidr", "", "w1"))
    ranked = [c.id for c in explain(Observations(nodes=(NODE,), facts={"w1": f},
                                                 checks=(bad,))).causes]
    assert ranked == (["cni-bridge-conflict"] if flagged else [])
    assert cni._gateway_wrong(f) is repaired


@pytest.mark.parametrize(("sample", "cause"), [
    ("healthy-worker-1", None), ("mixed-backend-worker-1", "iptables-mixed-backend"),
    ("netfilter-broken-worker-2", "netfilter-unmanageable")])
def test_check_ranking_and_repair_agree_on_iptables_backends(sample: str,
                                                             cause: str | None) -> None:
    f = parse_facts("w1", (DATA / f"{sample}.txt").read_text())
    found = nodefindings.iptables(f)
    assert [x.id for x in found] == ([cause] if cause else [])
    assert len(nodechecks.iptables_backends(f, PROBES)) == len(found)
    bad = CheckResult("t.py::test_iptables_backends[w1]", "failed",
                      place=Place("iptables_backends", "", "w1"))
    ranked = explain(Observations(nodes=(NODE,), facts={"w1": f}, checks=(bad,))).causes
    assert [c.id for c in ranked] == ([cause] if cause else [])
    if cause == "iptables-mixed-backend":
        assert found[0].setting == ("stale", "legacy")  # what StaleKubeRules flushes


@pytest.mark.parametrize("cni", ["calico", "canal"])
def test_strict_rp_filter_is_what_calico_wants(cni: str) -> None:
    # Felix refuses loose reverse-path filtering: no finding, no cause, no repair to 2.
    f = kernel_facts(**{SYSCTL_RP_FILTER: "1"})
    assert nodechecks.kernel(f, PROBES, cni) == []
    assert system._wrong(f, cni) == {}
    obs = dataclasses.replace(failing_kernel_check(), facts={"w1": f}, cni=cni)
    assert [c.id for c in explain(obs).causes] == []
