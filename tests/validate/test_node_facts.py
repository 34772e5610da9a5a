"""Node facts, read by a read-only node probe on every node: iptables backends, CNI config,
bridge and subnet lease, pod addresses, VXLAN peers, kernel switches."""

import pytest

from netdoctor.checks import (
    ClusterProfile,
    NodeFacts,
    ProbeSet,
    Validation,
    expect_none,
    node_info,
    nodechecks,
)

pytestmark = [pytest.mark.validate, pytest.mark.node, pytest.mark.measures()]


def test_iptables_backends(facts: NodeFacts, probes: ProbeSet) -> None:
    """KUBE-* rules live in one iptables backend and iptables can manage every table."""
    expect_none(nodechecks.iptables_backends(facts, probes),
                f"{facts.node}: iptables backends conflict")


@pytest.mark.requires("cni")
def test_cni_config_wins(facts: NodeFacts, profile: ClusterProfile, probes: ProbeSet) -> None:
    """The CNI config the runtime uses (lexically first) is the cluster CNI's own, or a
    meta-plugin (Multus) delegating to it."""
    expect_none(nodechecks.cni_winner(facts, profile.cni, probes),
                f"{facts.node}: wrong CNI config wins")


def test_bridge_matches_podcidr(facts: NodeFacts, profile: ClusterProfile,
                                probes: ProbeSet) -> None:
    """cni0 and the Flannel subnet lease lie inside the node's podCIDR."""
    expect_none(nodechecks.bridge_subnet(facts, node_info(profile, facts.node), probes),
                f"{facts.node}: bridge or subnet lease outside podCIDR")


def test_pod_ips_in_podcidr(validation: Validation, profile: ClusterProfile, node: str) -> None:
    """Every pod-network pod on ``node`` has an address from the node's podCIDR, where the
    CNI allocates from node podCIDRs (not Calico's or Cilium's own IPAM)."""
    if not profile.ipam_from_podcidr:
        pytest.skip(f"the {profile.cni} CNI does not allocate pod addresses from node podCIDRs")
    pods = [(f"{p['metadata']['namespace']}/{p['metadata']['name']}",
             str(p.get("status", {}).get("podIP") or "")) for p in validation.pods
            if p.get("spec", {}).get("nodeName") == node and not p["spec"].get("hostNetwork")]
    expect_none(nodechecks.pods_outside_cidr(node, node_info(profile, node).pod_cidr, pods),
                f"{node}: pod addresses outside podCIDR")


@pytest.mark.requires("flannel-data-plane")
def test_vxlan_peers(facts: NodeFacts, node_facts: dict[str, NodeFacts],
                     profile: ClusterProfile, probes: ProbeSet) -> None:
    """flannel.1 has a route, neighbour and FDB entry for every other node, each leading to
    that node's VTEP and InternalIP."""
    peers = [n for n in profile.nodes if n.name != facts.node]
    expect_none(nodechecks.vxlan_peers(facts, peers, probes, node_facts),
                f"{facts.node}: VXLAN forwarding incomplete")


def test_kernel_prerequisites(facts: NodeFacts, profile: ClusterProfile,
                              probes: ProbeSet) -> None:
    """ip_forward=1, bridge-nf-call-iptables=1, rp_filter not strict (where the CNI does not
    want it strict: Calico does)."""
    expect_none(nodechecks.kernel(facts, probes, profile.cni),
                f"{facts.node}: kernel prerequisites")
