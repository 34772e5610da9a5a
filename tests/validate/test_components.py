"""Component health for validation: CoreDNS, kube-proxy and Flannel Running and Ready on every
node they should cover, and their DaemonSets' desired = ready = eligible nodes."""

import pytest

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.model import make_evidence
from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import absent_on_node, expect_none, missing_workload, unhealthy_pods

pytestmark = [pytest.mark.validate]


@pytest.mark.coredns
@pytest.mark.signal("coredns_crashloop")
def test_coredns_running_ready(coredns: ComponentState) -> None:
    """Every CoreDNS replica is Running and Ready, and the Deployment has all replicas ready."""
    expect_none(missing_workload(coredns, "CoreDNS (k8s-app=kube-dns)") + unhealthy_pods(coredns),
                "CoreDNS is not Running and Ready")


@pytest.mark.kube_proxy
@pytest.mark.signal("kube_proxy_restarts")
def test_kube_proxy_running_ready(kube_proxy: ComponentState, node: str) -> None:
    """kube-proxy on ``node`` exists, is Running and Ready."""
    expect_none(absent_on_node(kube_proxy, node, "kube-proxy")
                + unhealthy_pods(kube_proxy, node=node), f"kube-proxy on {node} is not Ready")


@pytest.mark.flannel
@pytest.mark.signal("flannel_missing")
def test_flannel_running_ready(profile: ClusterProfile, flannel: ComponentState,
                               node: str) -> None:
    """A Flannel pod on ``node`` is Running and Ready (where Flannel is the CNI)."""
    if not profile.runs_flannel:
        pytest.skip(f"the cluster's CNI is {profile.cni}, not Flannel")
    expect_none(absent_on_node(flannel, node, "Flannel")
                + unhealthy_pods(flannel, node=node), f"Flannel on {node} is not Ready")


@pytest.mark.parametrize("component", ["kube-proxy", "flannel"])
def test_daemonset_counts(profile: ClusterProfile, component: str,
                          request: pytest.FixtureRequest) -> None:
    """desired == ready == eligible (Ready) nodes for the node agents' DaemonSets."""
    if component == "flannel" and not profile.runs_flannel:
        pytest.skip(f"the cluster's CNI is {profile.cni}, not Flannel")
    state: ComponentState = request.getfixturevalue(component.replace("-", "_"))
    expect_none(missing_workload(state, component), f"{component} has no DaemonSet")
    eligible = len(profile.ready_nodes)
    if not state.desired == state.ready_count == eligible:
        assert state.workload is not None
        expect_none([make_evidence(
            f"{state.workload.ref}: desired {state.desired}, ready {state.ready_count}, "
            f"eligible nodes {eligible}",
            [f"Ready nodes: {', '.join(n.name for n in profile.ready_nodes)}"],
            command=f"kubectl get ds -n {state.workload.namespace} {state.workload.name}")],
            f"{component} DaemonSet does not cover every node")
