"""Node facts, read by a read-only node probe on every node: iptables backends, CNI config,
bridge and subnet lease, pod addresses, VXLAN peers, kernel switches."""

import pytest

from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import ClusterProfile
from netdoctor.probes import nodechecks
from netdoctor.probes.findings import expect_none
from netdoctor.probes.validate import Validation
from netdoctor.rootcause.facts import NodeFacts

pytestmark = [pytest.mark.validate, pytest.mark.node]


def _info(profile: ClusterProfile, node: str):  # type: ignore[no-untyped-def]
    return next(n for n in profile.nodes if n.name == node)


def test_iptables_backends(facts: NodeFacts, probes: ProbeSet) -> None:
    """KUBE-* rules live in one iptables backend and iptables can manage every table."""
    expect_none(nodechecks.iptables_backends(facts, probes.namespace),
                f"{facts.node}: iptables backends conflict")


def test_cni_config_wins(facts: NodeFacts, profile: ClusterProfile, probes: ProbeSet) -> None:
    """The CNI config the runtime uses (lexically first) is the cluster's CNI."""
    if profile.cni == "unknown":
        pytest.skip("the cluster's CNI is not known")
    expect_none(nodechecks.cni_winner(facts, profile.cni, probes.namespace),
                f"{facts.node}: wrong CNI config wins")


def test_bridge_matches_podcidr(facts: NodeFacts, profile: ClusterProfile,
                                probes: ProbeSet) -> None:
    """cni0 and the Flannel subnet lease lie inside the node's podCIDR."""
    expect_none(nodechecks.bridge_subnet(facts, _info(profile, facts.node), probes.namespace),
                f"{facts.node}: bridge or subnet lease outside podCIDR")


def test_pod_ips_in_podcidr(validation: Validation, profile: ClusterProfile, node: str) -> None:
    """Every pod-network pod on ``node`` has an address from the node's podCIDR."""
    pods = [(f"{p['metadata']['namespace']}/{p['metadata']['name']}",
             str(p.get("status", {}).get("podIP") or "")) for p in validation.pods
            if p.get("spec", {}).get("nodeName") == node and not p["spec"].get("hostNetwork")]
    expect_none(nodechecks.pods_outside_cidr(node, _info(profile, node).pod_cidr, pods),
                f"{node}: pod addresses outside podCIDR")


def test_vxlan_peers(facts: NodeFacts, profile: ClusterProfile, probes: ProbeSet) -> None:
    """flannel.1 has a route, neighbour and FDB entry for every other node."""
    if not profile.runs_flannel:
        pytest.skip(f"the cluster's CNI is {profile.cni}, not Flannel")
    peers = [n for n in profile.nodes if n.name != facts.node]
    expect_none(nodechecks.vxlan_peers(facts, peers, probes.namespace),
                f"{facts.node}: VXLAN forwarding incomplete")


def test_kernel_prerequisites(facts: NodeFacts, probes: ProbeSet) -> None:
    """ip_forward=1, bridge-nf-call-iptables=1, rp_filter not strict."""
    expect_none(nodechecks.kernel(facts, probes.namespace),
                f"{facts.node}: kernel prerequisites")
