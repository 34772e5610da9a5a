"""Runs of the real checkout and of the ``netdoctor`` command as users type them (subprocesses,
no cluster: a kubeconfig that cannot be used ends every run that needs one at once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netdoctor.plugin.activation import EXIT_NOTHING_RAN

REPO = Path(__file__).resolve().parents[2]
NETDOCTOR = Path(sys.executable).parent / "netdoctor"
EXIT_ACCESS = 4


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("NETDOCTOR_", "PYTEST_")) and k not in ("KUBECONFIG",
                                                                           "PYTHONPATH")}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config" / "kubeconfig"
    path.parent.mkdir()
    path.write_text("x: 1\n")
    return path


def test_checkout_spaced_paths_stop_with_one_usage_error(tmp_path: Path,
                                                        kubeconfig: Path) -> None:
    reports = tmp_path / "out"
    done = _run([sys.executable, "-m", "pytest", "-m", "diagnose", "--kubeconfig",
                 str(kubeconfig), "--report-dir", str(reports)], REPO)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ERROR: netdoctor: pytest read '{kubeconfig}' as a test path before netdoctor's "
        f"options were known; write --kubeconfig={kubeconfig} (with '='), or use the "
        "netdoctor command, which accepts both forms"]
    assert "selftests" not in done.stdout + done.stderr
    assert not reports.exists()


def test_checkout_joined_paths_reach_the_cluster_check(tmp_path: Path,
                                                      kubeconfig: Path) -> None:
    reports = tmp_path / "out"
    done = _run([sys.executable, "-m", "pytest", "-m", "diagnose", f"--kubeconfig={kubeconfig}",
                 f"--report-dir={reports}"], REPO)
    assert done.returncode == EXIT_ACCESS, done.stdout + done.stderr
    assert f"ERROR: netdoctor: kubeconfig {kubeconfig} has no current-context" in done.stderr
    assert "rootdir: " + str(REPO) in done.stdout
    assert "verdict:" not in done.stdout
    assert not reports.exists()


def test_command_accepts_spaced_values_anywhere(tmp_path: Path, kubeconfig: Path) -> None:
    reports = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir()
    done = _run([str(NETDOCTOR), "diagnose", "--kubeconfig", str(kubeconfig), "--report-dir",
                 str(reports)], work)
    assert done.returncode == EXIT_ACCESS, done.stdout + done.stderr
    assert f"ERROR: netdoctor: kubeconfig {kubeconfig} has no current-context" in done.stderr
    assert f"rootdir: {work}" in done.stdout
    assert "warning" not in done.stdout.lower()
    assert not reports.exists()
    assert list(work.iterdir()) == []


def test_command_says_when_nothing_ran(tmp_path: Path) -> None:
    done = _run([str(NETDOCTOR), "validate", "-k", "no_such_check"], tmp_path)
    assert done.returncode == EXIT_NOTHING_RAN, done.stdout + done.stderr
    assert "netdoctor: no check ran: all " in done.stdout
    assert "deselected by -m/-k" in done.stdout
    assert list(tmp_path.iterdir()) == []


PROBE_MODULES = """
import sys, types, pytest

class Seen:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session):
        mods = [p.__name__ for p in session.config.pluginmanager.get_plugins()
                if isinstance(p, types.ModuleType)]
        print("PLUGINS", " ".join(sorted(m for m in mods
                                         if m.startswith(("fixtures", "netdoctor.suite")))))

pytest.main(sys.argv[1:], plugins=[Seen()])
print("MODULES", " ".join(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("fixtures", "remediation"))))
print("TESTS", " ".join(sorted({m.rsplit(".", 1)[0] for m in sys.modules
                               if "test_dns" in m})))
"""


def test_checkout_loads_each_suite_module_once_under_one_name(kubeconfig: Path) -> None:
    done = _run([sys.executable, "-c", PROBE_MODULES, "-m", "diagnose", "--collect-only", "-q",
                 f"--kubeconfig={kubeconfig}"], REPO)
    lines = dict(line.split(" ", 1) if " " in line else (line, "")
                 for line in done.stdout.splitlines()
                 if line.startswith(("PLUGINS", "MODULES", "TESTS")))
    assert lines["PLUGINS"].split() == ["netdoctor.suite.fixtures.cluster",
                                        "netdoctor.suite.fixtures.coverage",
                                        "netdoctor.suite.fixtures.observations",
                                        "netdoctor.suite.fixtures.validation"], done.stdout
    assert lines["MODULES"] == ""  # never the checkout's folders under their own names
    assert lines["TESTS"] == "tests.diagnose tests.validate"
