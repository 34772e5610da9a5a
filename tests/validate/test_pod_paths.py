"""Pod to pod, end to end: from the probe on each node to the echo pod on every node (the
same node included), pinged and fetched over HTTP, each path k of n times."""

import pytest

from netdoctor.checks import (
    ECHO_PORT,
    Echo,
    PairId,
    ProbeSet,
    Recorder,
    Validation,
    judge,
    path_ends,
)

pytestmark = [pytest.mark.validate, pytest.mark.connectivity,
              pytest.mark.signal("pod_connectivity_failed"), pytest.mark.measures("pod-paths")]


def test_pod_ping(validation: Validation, probes: ProbeSet, echo: Echo, node_path: PairId,
                  evidence: Recorder) -> None:
    """Every echo request from the probe on the source node to the echo pod is answered."""
    ip = path_ends(probes, echo, node_path)
    judge(evidence, f"ping {node_path} ({ip})", validation.pod_ping.get(node_path))


def test_pod_http(validation: Validation, probes: ProbeSet, echo: Echo, node_path: PairId,
                  evidence: Recorder) -> None:
    """HTTP GET to the echo pod's port answers 2xx every time."""
    ip = path_ends(probes, echo, node_path)
    judge(evidence, f"GET http://{ip}:{ECHO_PORT}/hostname {node_path}",
          validation.pod_http.get(node_path))
