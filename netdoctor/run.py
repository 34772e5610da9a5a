"""``netdoctor diagnose|validate|remediate [pytest options]``: the installed checks, anywhere.

The command becomes pytest (``python -P -m pytest``: the current folder is not put on
``sys.path``, and no netdoctor module is imported before pytest starts) on the installed
checks (``--pyargs netdoctor.suite.tests``) with the mode's marker, the rootdir set to the
current folder (so reports go to ``./reports`` by default) and the options passed through;
netdoctor's value options may be written ``--flag VALUE`` or ``--flag=VALUE``
(:func:`netdoctor.plugin.argv.join_values`). A ``-m`` expression given by the user narrows the
mode's (``diagnose and (dns)``). The exit status is pytest's, as netdoctor's plugin sets it
(docs/diagnose.md lists them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from netdoctor.suite import TESTS

MODES: dict[str, str] = {
    "diagnose": "read-only symptom checks (pytest -m diagnose)",
    "validate": "end-to-end scenarios (pytest -m validate)",
    "remediate": "every check, then ordered, verified repairs (pytest --remediate)",
}
DEFAULT_OPTIONS = ("-p", "no:cacheprovider", "--tb=short")
"""The checkout's pytest addopts (pyproject.toml), for runs without the checkout."""


def _take_markexpr(args: list[str]) -> tuple[list[str], list[str]]:
    """Split the user's ``-m EXPR`` (``-mEXPR``, ``-m=EXPR``) from the other arguments."""
    rest: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "-m" and i + 1 < len(args):
            found.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("-m") and len(arg) > 2:
            found.append(arg[2:].removeprefix("="))
        else:
            rest.append(arg)
        i += 1
    return rest, found


def pytest_argv(mode: str, args: Sequence[str], cwd: Path) -> list[str]:
    """The pytest arguments for ``netdoctor MODE ARGS`` run in ``cwd``.

    Example:
        >>> pytest_argv("diagnose", ["--kubeconfig", "/k", "-m", "dns"], Path("/w"))[:5]
        ['--pyargs', 'netdoctor.suite.tests', '-m', 'diagnose and (dns)', '--rootdir=/w']
    """
    from netdoctor.plugin.argv import join_values  # the plugin only when a mode runs

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    rest, user_marks = _take_markexpr(join_values(args))
    marks = ([] if mode == "remediate" else [mode]) + [f"({m})" for m in user_marks]
    argv = ["--pyargs", TESTS]
    if marks:
        argv += ["-m", " and ".join(marks)]
    if not any(a == "--rootdir" or a.startswith("--rootdir=") for a in rest):
        argv.append(f"--rootdir={cwd}")
    if mode == "remediate" and "--remediate" not in rest:
        argv.append("--remediate")
    return [*argv, *DEFAULT_OPTIONS, *rest]


def run(mode: str, args: Sequence[str]) -> NoReturn:
    """Replace this process by pytest running the checks of ``mode`` (its exit status is the
    command's)."""
    argv = [sys.executable, "-P", "-m", "pytest", *pytest_argv(mode, args, Path.cwd())]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
