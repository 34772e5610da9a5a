"""kube-proxy: one pod per node that is Ready and does not keep restarting."""

import pytest

from netdoctor.plugin.state import get_state
from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import absent_on_node, expect_none, unhealthy_pods

pytestmark = [pytest.mark.diagnose, pytest.mark.kube_proxy,
              pytest.mark.signal("kube_proxy_restarts")]


def test_kube_proxy_stable(kube_proxy: ComponentState, node: str,
                           request: pytest.FixtureRequest) -> None:
    """kube-proxy on ``node`` exists, is Ready and restarted less than the threshold."""
    threshold = get_state(request.config).settings.kube_proxy_restart_threshold
    expect_none(absent_on_node(kube_proxy, node, "kube-proxy")
                + unhealthy_pods(kube_proxy, restart_threshold=threshold, node=node),
                f"kube-proxy on {node} is not stable")
