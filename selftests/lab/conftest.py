"""Fixtures for the lab API tests: one server per session, kubeconfigs, kubectl."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from selftests.lab.apilab import ApiLab

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiLab]:
    """The API server with seed objects."""
    server = ApiLab(tmp_path_factory.mktemp("apilab"))
    yield server
    server.close()


@pytest.fixture
def kubectl(lab: ApiLab, tmp_path: Path) -> Kubectl:
    """Run kubectl against the lab with a fresh discovery cache; 20 s deadline per call."""
    def run(*args: str, token: str | None = None, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "KUBECONFIG": str(lab.kubeconfig(token) if token else lab.kubeconfig()),
               "KUBECACHEDIR": str(tmp_path / "kube-cache")}
        done = subprocess.run(["kubectl", *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=20, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {args} -> {done.returncode}: {done.stderr}")
        return done
    return run


# The end-to-end tier's fixtures (a whole lab through the CLI); named apart from the above.
from selftests.lab.labfixture import cluster, cluster_kubectl  # noqa: E402, F401
