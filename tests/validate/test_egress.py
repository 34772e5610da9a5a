"""Pod egress: the configured external URL answers from a pod on every node."""

import pytest

from netdoctor.cluster.probes import ProbeSet
from netdoctor.plugin.state import get_state
from netdoctor.probes.pathfindings import expect_ok, need_probe
from netdoctor.probes.validate import Validation

pytestmark = [pytest.mark.validate, pytest.mark.connectivity]


def test_egress_http(validation: Validation, probes: ProbeSet, node: str,
                     request: pytest.FixtureRequest) -> None:
    """``--external-url`` answers with 2xx/3xx from a pod on ``node`` (skipped --offline)."""
    settings = get_state(request.config).settings
    if settings.offline:
        pytest.skip("--offline: the cluster is not expected to reach the outside")
    need_probe(probes, node)
    expect_ok(f"GET {settings.external_url} from {node}", validation.egress_http.get(node))
