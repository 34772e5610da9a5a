"""Component health for validation: CoreDNS, kube-proxy and the CNI's agent Running and Ready
on every node they should cover, and the node agents' DaemonSets' desired = ready = eligible
nodes. Components that run without pods (embedded, replaced) are judged as they run."""

import pytest

from netdoctor.checks import (
    ClusterProfile,
    ComponentState,
    absent_on_node,
    expect_none,
    kube_proxy_on_node,
    make_evidence,
    missing_workload,
    unhealthy_pods,
)

pytestmark = [pytest.mark.validate]


@pytest.mark.coredns
@pytest.mark.signal("coredns_crashloop")
def test_coredns_running_ready(coredns: ComponentState) -> None:
    """Every CoreDNS replica is Running and Ready, and the workload has all replicas ready."""
    expect_none(missing_workload(coredns, "cluster DNS workload") + unhealthy_pods(coredns),
                "CoreDNS is not Running and Ready")


@pytest.mark.kube_proxy
@pytest.mark.signal("kube_proxy_restarts")
@pytest.mark.requires("kube-proxy")
def test_kube_proxy_running_ready(profile: ClusterProfile, kube_proxy: ComponentState,
                                  node: str) -> None:
    """kube-proxy on ``node`` exists, is Running and Ready (embedded: its rules are there)."""
    if profile.kube_proxy_runs == "undecided":
        pytest.skip(profile.kube_proxy_reason)
    expect_none(kube_proxy_on_node(profile, kube_proxy, node),
                f"kube-proxy on {node} is not Ready")


@pytest.mark.flannel
@pytest.mark.signal("flannel_missing")
@pytest.mark.requires("cni-agent")
def test_flannel_running_ready(profile: ClusterProfile, cni_agent: ComponentState,
                               node: str) -> None:
    """A pod of the CNI's agent on ``node`` is Running and Ready."""
    what = f"{profile.cni} agent"
    expect_none(absent_on_node(cni_agent, node, what) + unhealthy_pods(cni_agent, node=node),
                f"the {what} on {node} is not Ready")


@pytest.mark.parametrize("component", [
    pytest.param("kube-proxy", marks=pytest.mark.requires("kube-proxy-pods")),
    pytest.param("cni-agent", marks=pytest.mark.requires("cni-agent"))])
def test_daemonset_counts(profile: ClusterProfile, component: str,
                          request: pytest.FixtureRequest) -> None:
    """desired == ready == eligible (Ready) nodes for the node agents (DaemonSets, or one
    static pod per node)."""
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
            f"{component} does not cover every node")
