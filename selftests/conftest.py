"""Shared fixtures for netdoctor's own tests."""

from __future__ import annotations

import pytest

from selftests.helpers import Sample, load_sample

pytest_plugins = ["pytester"]


@pytest.fixture
def sample(request: pytest.FixtureRequest) -> Sample:
    """The captured sample named by indirect parametrization."""
    return load_sample(request.param)
