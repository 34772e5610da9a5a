"""Option values as users type them: ``--kubeconfig /path`` as well as ``--kubeconfig=/path``.

pytest looks for its rootdir and ini file before plugins add their options, so in
``pytest -m diagnose --kubeconfig /path/to/config`` it reads ``/path/to/config`` as a test
path: the rootdir becomes that file's folder and the project's ini settings are lost.
The ``netdoctor`` command joins such values to their flag before pytest sees them
(:func:`join_values`); under bare ``pytest`` a value that pytest may have read as a path ends
the run with one :class:`pytest.UsageError` asking for ``--flag=VALUE``
(:func:`refuse_spaced_paths`) before anything is collected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from netdoctor.plugin.options import OPTIONS, OptionSpec

VALUE_OPTIONS: dict[str, OptionSpec] = {o.flag: o for o in OPTIONS if o.kind != "flag"}
"""netdoctor's options that take a value, by flag."""


def _spaced(argv: Sequence[str]) -> Iterator[tuple[int, OptionSpec]]:
    """Positions of netdoctor value options whose value is the next word."""
    i = 0
    while i < len(argv) - 1:
        if argv[i] == "--":
            return
        spec = VALUE_OPTIONS.get(argv[i])
        if spec is not None and not argv[i + 1].startswith("-"):
            yield i, spec
            i += 1
        i += 1


def join_values(argv: Sequence[str]) -> list[str]:
    """``--flag VALUE`` -> ``--flag=VALUE`` for netdoctor's value options.

    An optional value (``--lab [SCENARIO]``) takes the next word as argparse would: when it
    does not start with ``-``.

    Example:
        >>> join_values(["-q", "--kubeconfig", "/k", "--context", "x", "--lab", "-v"])
        ['-q', '--kubeconfig=/k', '--context=x', '--lab', '-v']
    """
    joined = list(argv)
    for i, _spec in reversed(list(_spaced(argv))):
        joined[i:i + 2] = [f"{joined[i]}={joined[i + 1]}"]
    return joined


def looks_like_path(value: str, cwd: Path) -> bool:
    """Whether pytest's early look for a rootdir may have taken ``value`` as a test path:
    an absolute or home-relative path, one leaving ``cwd``, or one that exists there."""
    path = Path(value)
    return (path.is_absolute() or value.startswith("~") or ".." in path.parts
            or (cwd / path).exists())


def refuse_spaced_paths(config: pytest.Config) -> None:
    """Raise one UsageError for ``--flag PATH`` given to bare pytest.

    Raises:
        pytest.UsageError: Naming the option and the ``--flag=VALUE`` form to use.
    """
    args = config.invocation_params.args
    cwd = config.invocation_params.dir
    for i, spec in _spaced(args):
        if looks_like_path(args[i + 1], cwd):
            optional = spec.kind == "optional"
            paths_first = f", or give test paths before {spec.flag}" if optional else ""
            raise pytest.UsageError(
                f"netdoctor: pytest read {args[i + 1]!r} as a test path before netdoctor's "
                f"options were known; write {spec.flag}={args[i + 1]} (with '='){paths_first}, "
                "or use the netdoctor command, which accepts both forms")
