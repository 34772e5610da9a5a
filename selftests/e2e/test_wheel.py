"""The product as users get it: the wheel built from this checkout, installed with its
dependencies into a fresh venv (no system site-packages, no checkout on the path), run from
empty folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300.0
INSTALL_TIMEOUT = 600.0
RUN_TIMEOUT = 300.0
UNRELATED = "def test_unrelated():\n    assert 1 + 1 == 2\n"
SHIPPED = (
    "netdoctor/suite/tests/diagnose/test_dns.py",
    "netdoctor/suite/tests/validate/test_node_facts.py",
    "netdoctor/suite/fixtures/cluster.py",
    "netdoctor/suite/remediation/__init__.py",
    "netdoctor/suite/remediation/manifests/kube-flannel-v0.25.5.yml",
    "netdoctor/rootcause/nodefacts.sh",
    "netdoctor/plugin/lab_provider.py",
)


@dataclass
class Installed:
    """The built wheel and the venv it is installed in."""

    wheel: Path
    venv: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def bin(self, name: str) -> str:
        """A console script of the venv."""
        return str(self.venv / "bin" / name)


def _env() -> dict[str, str]:
    # Nothing of the checkout or of the outer run may leak into the installed runs.
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "KUBECONFIG", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items()
            if k not in drop and not k.startswith(("NETDOCTOR_", "PYTEST_"))}


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _timed(installed: Installed, step: str, argv: list[str], cwd: Path,
           timeout: float) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = _run(argv, cwd, timeout)
    installed.seconds[step] = round(time.monotonic() - started, 1)
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel once and install it with its dependencies from the package index."""
    root = tmp_path_factory.mktemp("wheel")
    result = Installed(wheel=Path(), venv=root / "venv")
    done = _timed(result, "build", [sys.executable, "-m", "build", "--wheel", "--outdir",
                                    str(root / "dist"), str(REPO)], root, BUILD_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    (result.wheel,) = (root / "dist").glob("netdoctor-*.whl")
    done = _timed(result, "venv", [sys.executable, "-m", "venv", "--without-pip",
                                   str(result.venv)], root, BUILD_TIMEOUT)
    assert done.returncode == 0, done.stderr
    done = _timed(result, "install", [sys.executable, "-m", "pip", "--python",
                                      result.bin("python"), "install", "-q", str(result.wheel)],
                  root, INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    yield result
    print(f"wheel: {result.wheel.name}; seconds: {result.seconds}")


def test_wheel_holds_the_whole_suite(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    for shipped in SHIPPED:
        assert shipped in names
    tops = {name.split("/", 1)[0] for name in names}
    name, version = installed.wheel.name.split("-")[:2]
    assert tops == {"netdoctor", f"{name}-{version}.dist-info"}  # no top-level tests, fixtures
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "netdoctor = netdoctor.plugin" in text
    assert "netdoctor = netdoctor.cli:main" in text


def test_installed_package_imports_nothing_from_the_checkout(installed: Installed,
                                                             tmp_path: Path) -> None:
    done = _run([installed.bin("python"), "-c",
                 "import netdoctor.suite.tests as t, netdoctor.suite.fixtures as f, "
                 "netdoctor.suite.remediation as r, importlib.util as u; "
                 "print(t.__path__[0], f.__path__[0], r.__path__[0]); "
                 "print(*(u.find_spec(n) for n in ('tests', 'fixtures', 'remediation')))"],
                tmp_path, RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    paths, missing = done.stdout.splitlines()
    assert all(p.startswith(str(installed.venv)) for p in paths.split()), paths
    assert missing == "None None None"


def test_unrelated_tests_see_nothing_of_netdoctor(installed: Installed, tmp_path: Path) -> None:
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    done = _timed(installed, "unrelated", [installed.bin("pytest"), "test_unrelated.py"],
                  tmp_path, RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    mentions = [line for line in (done.stdout + done.stderr).splitlines()
                if "netdoctor" in line.lower() and not line.startswith("plugins: ")]
    assert mentions == []
    assert not (tmp_path / "reports").exists()


def test_diagnose_the_problem_statement_lab(installed: Installed, tmp_path: Path) -> None:
    done = _timed(installed, "diagnose", [installed.bin("netdoctor"), "diagnose",
                                          "--lab=problem-statement"], tmp_path, RUN_TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, output[-3000:]
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert (summary["score"], summary["verdict"]) == (6, "confirmed"), output[-3000:]
    assert all(signal for signal in summary["signals"].values())
    assert summary["root_causes"], "node facts and root causes come from the installed package"
    assert (tmp_path / "reports" / "report.html").exists()
    assert (tmp_path / "reports" / "analysis.md").exists()
    assert "verdict: confirmed (score 6/6" in done.stdout
    assert f"rootdir: {tmp_path}" in done.stdout
    assert "warnings summary" not in done.stdout


def test_pyargs_run_connects_through_the_installed_fixtures(installed: Installed,
                                                            tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("x: 1\n")
    done = _run([installed.bin("pytest"), "--pyargs", "netdoctor.suite.tests", "-m",
                 "diagnose", f"--kubeconfig={kubeconfig}"], tmp_path, RUN_TIMEOUT)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"ERROR: netdoctor: kubeconfig {kubeconfig} has no current-context" in done.stderr
    assert not (tmp_path / "reports").exists()
