"""Flannel: where the cluster runs Flannel, its DaemonSet exists and covers every Ready node."""

import pytest

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import expect_none, flannel_absent, flannel_gaps

pytestmark = [pytest.mark.diagnose, pytest.mark.flannel, pytest.mark.signal("flannel_missing")]


@pytest.fixture
def runs_flannel(profile: ClusterProfile) -> None:
    """Skip unless Flannel is the CNI (its DaemonSet exists or it annotated the nodes)."""
    if not profile.runs_flannel:
        pytest.skip(f"the cluster's CNI is {profile.cni}, not Flannel")


@pytest.mark.usefixtures("runs_flannel")
def test_flannel_daemonset_present(profile: ClusterProfile, flannel: ComponentState) -> None:
    """Nodes carry Flannel's annotations, so a Flannel DaemonSet must exist."""
    expect_none(flannel_absent(profile, flannel), "Flannel runs here but its DaemonSet is gone")


@pytest.mark.usefixtures("runs_flannel")
def test_flannel_on_every_node(profile: ClusterProfile, flannel: ComponentState) -> None:
    """Every Ready node has a Ready Flannel pod (desired == ready == Ready nodes)."""
    if flannel.workload is None:
        pytest.skip("no Flannel DaemonSet (see test_flannel_daemonset_present)")
    expect_none(flannel_gaps(profile, flannel), "Flannel does not cover every node")
