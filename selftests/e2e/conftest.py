"""Labs for the end-to-end tier (root needed; each lab is torn down after its tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from selftests.e2e.labrun import Lab, lab_up


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here is ``e2e``; without root it cannot build a lab."""
    for item in items:
        if "selftests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="the lab needs root"))


@pytest.fixture(scope="session")
def healthy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 3-node healthy lab shared by the tests that leave it healthy."""
    lab = lab_up(tmp_path_factory.mktemp("healthy") / "lab", "healthy")
    yield lab
    lab.down()
