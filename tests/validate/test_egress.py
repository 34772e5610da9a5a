"""Pod egress: the configured external URL answers from a pod on every node."""

import pytest

from netdoctor.checks import ProbeSet, Settings, Validation, expect_ok, need_probe

pytestmark = [pytest.mark.validate, pytest.mark.connectivity, pytest.mark.measures("egress")]


def test_egress_http(validation: Validation, probes: ProbeSet, node: str,
                     settings: Settings) -> None:
    """``--external-url`` answers with 2xx/3xx from a pod on ``node`` (skipped --offline)."""
    if settings.offline:
        pytest.skip("--offline: the cluster is not expected to reach the outside")
    need_probe(probes, node)
    expect_ok(f"GET {settings.external_url} from {node}", validation.egress_http.get(node))
