"""Everything a check in tests/ uses, from one place.

Checks declare what they measure and expect; they import from here and receive the
measurements as fixtures (``observations``, ``validation``, ``probes``, ``profile``,
``settings``, ``facts``, component states). They never read the engine's run state, and
what they need from the cluster is declared with ``@pytest.mark.requires(...)``, judged once
against the cluster profile at setup.

Example::

    from netdoctor.checks import ComponentState, expect_none, unhealthy_pods

    @pytest.mark.requires("kube-proxy-pods")
    def test_kube_proxy(kube_proxy: ComponentState, node: str) -> None:
        expect_none(unhealthy_pods(kube_proxy, node=node), f"kube-proxy on {node}")
"""

from __future__ import annotations

from netdoctor.cluster.echo import ECHO_PORT, SERVICE_PORT, Echo
from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import ClusterProfile, NodeInfo
from netdoctor.model import CheckFailed, Evidence, NotObserved, make_evidence
from netdoctor.plugin.options import Settings
from netdoctor.probes import nodechecks
from netdoctor.probes.components import ComponentState, ServiceEndpoints
from netdoctor.probes.findings import (
    absent_on_node,
    cni_agent_absent,
    cni_agent_gaps,
    dns_failures,
    expect_none,
    kube_proxy_on_node,
    log_timeouts,
    missing_workload,
    ping_failure,
    probe_failures_in_events,
    probe_missing,
    services_without_endpoints,
    unhealthy_pods,
)
from netdoctor.probes.network import PairId
from netdoctor.probes.observe import Observations
from netdoctor.probes.pathfindings import Recorder, expect_ok, judge, need_probe, not_ok, path_ends
from netdoctor.probes.validate import Validation
from netdoctor.rootcause.facts import NodeFacts

__all__ = [
    "ECHO_PORT",
    "SERVICE_PORT",
    "CheckFailed",
    "ClusterProfile",
    "ComponentState",
    "Echo",
    "Evidence",
    "NodeFacts",
    "NodeInfo",
    "NotObserved",
    "Observations",
    "PairId",
    "ProbeSet",
    "Recorder",
    "ServiceEndpoints",
    "Settings",
    "Validation",
    "absent_on_node",
    "cni_agent_absent",
    "cni_agent_gaps",
    "dns_failures",
    "expect_none",
    "expect_ok",
    "judge",
    "kube_proxy_on_node",
    "log_timeouts",
    "make_evidence",
    "missing_workload",
    "need_probe",
    "node_info",
    "nodechecks",
    "not_ok",
    "path_ends",
    "ping_failure",
    "probe_failures_in_events",
    "probe_missing",
    "services_without_endpoints",
    "unhealthy_pods",
]


def node_info(profile: ClusterProfile, node: str) -> NodeInfo:
    """The profile's :class:`NodeInfo` of ``node``."""
    return next(n for n in profile.nodes if n.name == node)
