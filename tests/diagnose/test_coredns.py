"""CoreDNS (the cluster DNS workload, wherever it lives): its pods run, are Ready, do not
restart lately, and pass their probes."""

import pytest

from netdoctor.checks import (
    ComponentState,
    Settings,
    expect_none,
    missing_workload,
    probe_failures_in_events,
    unhealthy_pods,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.coredns, pytest.mark.signal("coredns_crashloop")]

RESTARTS = 3  # a CoreDNS restarting this often within the window is crash-looping


def test_coredns_pods_ready(coredns: ComponentState, settings: Settings) -> None:
    """Every CoreDNS pod is Ready, not in CrashLoopBackOff, and has few recent restarts."""
    expect_none(missing_workload(coredns, "cluster DNS workload (behind the DNS Service or "
                                          "k8s-app=kube-dns)")
                + unhealthy_pods(coredns, restart_threshold=RESTARTS,
                                 window=settings.restart_window * 60),
                "CoreDNS is not healthy")


def test_coredns_probes_pass(coredns: ComponentState) -> None:
    """No readiness or liveness probe failures in the CoreDNS pods' Events."""
    expect_none(probe_failures_in_events(coredns), "CoreDNS fails its health probes")
