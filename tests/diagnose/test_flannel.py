"""The CNI's agent: where the cluster's CNI runs an agent (Flannel, calico-node, canal,
cilium...), it exists and covers every Ready node. Flannel embedded in the node agent (no
pod, flannel.1 on every node) is healthy. Raised under ``flannel_missing`` for every CNI."""

import pytest

from netdoctor.checks import (
    ClusterProfile,
    ComponentState,
    cni_agent_absent,
    cni_agent_gaps,
    expect_none,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.flannel, pytest.mark.signal("flannel_missing"),
              pytest.mark.requires("cni-agent")]


def test_flannel_daemonset_present(profile: ClusterProfile, cni_agent: ComponentState) -> None:
    """The CNI's agent runs: its DaemonSet exists (or, for Flannel, it runs embedded)."""
    if cni_agent.workload is None and profile.cni == "flannel" and profile.cni_embedded is None:
        pytest.skip(f"{profile.cni_reason}; without node facts "
                    f"({profile.node_facts or 'node probes did not run'}) embedded cannot be "
                    "told from missing")
    expect_none(cni_agent_absent(profile, cni_agent),
                f"the {profile.cni} agent should run but does not")


def test_flannel_on_every_node(profile: ClusterProfile, cni_agent: ComponentState) -> None:
    """Every Ready node has a Ready pod of the CNI's agent (desired == ready == Ready nodes)."""
    if cni_agent.workload is None:
        pytest.skip(f"no {profile.cni} agent DaemonSet (see test_flannel_daemonset_present)")
    expect_none(cni_agent_gaps(profile, cni_agent), f"the {profile.cni} agent does not cover "
                "every node")
