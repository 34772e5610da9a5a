"""kube-proxy: on every node it runs as the cluster runs it (DaemonSet or static pods that
are Ready and not restarting lately, or embedded in the node agent with its rules in place)."""

import pytest

from netdoctor.checks import (
    ClusterProfile,
    ComponentState,
    Settings,
    expect_none,
    kube_proxy_on_node,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.kube_proxy,
              pytest.mark.signal("kube_proxy_restarts"), pytest.mark.requires("kube-proxy")]


def test_kube_proxy_stable(profile: ClusterProfile, kube_proxy: ComponentState, node: str,
                           settings: Settings) -> None:
    """kube-proxy on ``node`` exists, is Ready and restarted less than the threshold within
    the restart window (or, embedded, programs the node's Service rules)."""
    if profile.kube_proxy_runs == "undecided":
        facts = profile.node_facts or "node probes did not run"
        pytest.skip(f"{profile.kube_proxy_reason}; without node facts ({facts}) embedded "
                    "cannot be told from missing")
    expect_none(kube_proxy_on_node(profile, kube_proxy, node,
                                   restart_threshold=settings.kube_proxy_restart_threshold,
                                   window=settings.restart_window * 60),
                f"kube-proxy on {node} is not stable")
