"""Service endpoints for validation: every Service with a selector whose workloads want pods
has some ready (a selector matching no workload and no pod at all is named as such; a
workload scaled to zero on purpose is not a fault)."""

import pytest

from netdoctor.checks import Observations, expect_none, services_without_endpoints

pytestmark = [pytest.mark.validate, pytest.mark.services,
              pytest.mark.signal("service_endpoints_missing")]


def test_services_select_ready_pods(observations: Observations) -> None:
    """No Service with a selector is left without a ready endpoint where pods are wanted."""
    if "services" in observations.errors:
        pytest.skip(f"Services unreadable: {observations.errors['services']}")
    expect_none(services_without_endpoints(observations.services),
                "Services without ready endpoints")
