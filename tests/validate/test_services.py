"""Services end to end: the echo Service's ClusterIP and NodePort, and the API's ClusterIP,
from every node."""

import pytest

from netdoctor.checks import (
    SERVICE_PORT,
    Echo,
    PairId,
    ProbeSet,
    Recorder,
    Validation,
    expect_ok,
    judge,
    need_probe,
)

pytestmark = [pytest.mark.validate, pytest.mark.services, pytest.mark.kube_proxy]


@pytest.mark.measures("service-paths")
def test_service_cluster_ip(validation: Validation, probes: ProbeSet, echo: Echo, node: str,
                            evidence: Recorder) -> None:
    """The echo Service answers through its ClusterIP from a pod on ``node``."""
    need_probe(probes, node)
    judge(evidence, f"GET http://{echo.cluster_ip}:{SERVICE_PORT}/ from {node}",
          validation.service_http.get(node))


@pytest.mark.measures("service-paths")
def test_api_cluster_ip(validation: Validation, probes: ProbeSet, node: str) -> None:
    """The API server answers (any HTTP status, 401/403 included) through the kubernetes
    Service from a pod on ``node``."""
    need_probe(probes, node)
    if not validation.api_ip:
        pytest.skip("no ClusterIP on Service default/kubernetes")
    m = validation.api_http.get(node)
    if m is not None and m.result.http_code is not None:
        return  # any HTTP answer: reachable (401/403 without credentials)
    expect_ok(f"https://{validation.api_ip}:443 from {node}", m)


@pytest.mark.measures("nodeport")
def test_node_port(validation: Validation, echo: Echo, node_path: PairId,
                   evidence: Recorder) -> None:
    """The echo NodePort answers on the target node's InternalIP from the source node."""
    if not echo.node_port:
        pytest.skip("the echo Service got no nodePort")
    need_probe(validation.node_probes, node_path.source)
    judge(evidence, f"NodePort {echo.node_port} {node_path}", validation.nodeport.get(node_path))
