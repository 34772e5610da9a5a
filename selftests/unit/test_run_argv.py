"""The ``netdoctor diagnose|validate|remediate`` command line: what pytest is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor import cli, run
from netdoctor.plugin.argv import join_values, looks_like_path
from netdoctor.plugin.options import OPTIONS

CWD = Path("/work/here")
HEAD = ["--pyargs", "netdoctor.suite.tests"]
TAIL = [f"--rootdir={CWD}", *run.DEFAULT_OPTIONS]


@pytest.mark.parametrize(
    ("mode", "args", "expected"),
    [
        ("diagnose", [], [*HEAD, "-m", "diagnose", *TAIL]),
        ("validate", ["-q"], [*HEAD, "-m", "validate", *TAIL, "-q"]),
        ("remediate", ["--dry-run"],
         [*HEAD, f"--rootdir={CWD}", "--remediate", *TAIL[1:], "--dry-run"]),
        ("diagnose", ["--kubeconfig", "/k/config", "--report-dir", "/abs/dir", "--context", "x"],
         [*HEAD, "-m", "diagnose", *TAIL, "--kubeconfig=/k/config", "--report-dir=/abs/dir",
          "--context=x"]),
        ("diagnose", ["-m", "dns or coredns", "-k", "upstream"],
         [*HEAD, "-m", "diagnose and (dns or coredns)", *TAIL, "-k", "upstream"]),
        ("remediate", ["-mdns"], [*HEAD, "-m", "(dns)", f"--rootdir={CWD}", "--remediate",
                                  *TAIL[1:]]),
        ("diagnose", ["--rootdir=/r", "--lab", "problem-statement"],
         [*HEAD, "-m", "diagnose", *TAIL[1:], "--rootdir=/r", "--lab=problem-statement"]),
    ],
    ids=["diagnose", "validate-passes-options", "remediate-all-checks", "spaced-values",
         "user-markexpr-narrows", "remediate-markexpr", "user-rootdir-kept"],
)
def test_pytest_argv(mode: str, args: list[str], expected: list[str]) -> None:
    assert run.pytest_argv(mode, args, CWD) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lab", "-q"], ["--lab", "-q"]),
        (["--lab", "healthy", "-q"], ["--lab=healthy", "-q"]),
        (["--ignore-service", "a/b", "--ignore-service", "c/d"],
         ["--ignore-service=a/b", "--ignore-service=c/d"]),
        (["--offline", "--probe-timeout", "3"], ["--offline", "--probe-timeout=3"]),
        (["--kubeconfig=/k", "-x"], ["--kubeconfig=/k", "-x"]),
        (["--", "--kubeconfig", "/k"], ["--", "--kubeconfig", "/k"]),
        (["--kubeconfig"], ["--kubeconfig"]),
    ],
    ids=["optional-without-value", "optional-with-value", "repeated-list", "flag-untouched",
         "already-joined", "after-double-dash", "missing-value-left-to-pytest"],
)
def test_join_values(args: list[str], expected: list[str]) -> None:
    assert join_values(args) == expected


def test_every_value_option_is_joined() -> None:
    for spec in OPTIONS:
        joined = join_values([spec.flag, "v"])
        assert joined == ([spec.flag, "v"] if spec.kind == "flag" else [f"{spec.flag}=v"]), spec


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/abs/kc", True), ("~/kc", True), ("../kc", True), ("exists.yaml", True),
     ("prod", False), ("ns/web", False), ("5", False)],
)
def test_looks_like_path(tmp_path: Path, value: str, expected: bool) -> None:
    (tmp_path / "exists.yaml").write_text("")
    assert looks_like_path(value, tmp_path) is expected


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode 'fix'"):
        run.pytest_argv("fix", [], CWD)


def test_cli_dispatches_modes_to_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(run, "run", lambda mode, args: seen.append((mode, list(args))) or 3)
    assert cli.main(["validate", "--kubeconfig", "/k", "--help"]) == 3
    assert seen == [("validate", ["--kubeconfig", "/k", "--help"])]


def test_cli_help_lists_modes_and_lab(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for word in (*run.MODES, "lab"):
        assert word in out
