"""Check a kubeconfig before the client reads it: one line naming the file and the field.

The client's own errors for a bad kubeconfig are a ``TypeError`` for an empty file, a
16-line YAML error for a malformed one, or an SSL error long after the fact for a missing
certificate file. :func:`check` finds these first and says which file, which entry and which
field is wrong.

Example:
    >>> check_document({"apiVersion": "v1", "clusters": []}, Path("kc"), None)
    Traceback (most recent call last):
    ...
    netdoctor.cluster.kubeconfig.KubeconfigProblem: kubeconfig kc has no current-context; \
pass --context (contexts in the file: none)
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
FILE_FIELDS = {"cluster": ("certificate-authority",),
               "user": ("client-certificate", "client-key", "tokenFile")}
DATA_FIELDS = {"cluster": ("certificate-authority-data",),
               "user": ("client-certificate-data", "client-key-data")}


class KubeconfigProblem(Exception):
    """The kubeconfig cannot be used; ``str(exc)`` is the one line to show."""


def candidate_paths(given: Path | None, environ: Mapping[str, str]) -> tuple[list[Path], bool]:
    """The kubeconfig files the client will read, and whether they were named explicitly
    (``--kubeconfig`` or ``$KUBECONFIG``) rather than the default ``~/.kube/config``."""
    if given is not None:
        return [given], True
    listed = [Path(p).expanduser() for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return listed, True
    return [Path("~/.kube/config").expanduser()], False


def load(path: Path) -> dict[str, Any]:
    """Parse one kubeconfig file into a mapping.

    Raises:
        KubeconfigProblem: Missing, unreadable, empty, malformed, or not a mapping.
    """
    if not path.exists():
        raise KubeconfigProblem(f"kubeconfig {path} does not exist")
    if not path.is_file():
        raise KubeconfigProblem(f"kubeconfig {path} is not a file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigProblem(f"kubeconfig {path} cannot be read: {exc}") from None
    if not text.strip():
        raise KubeconfigProblem(f"kubeconfig {path} is empty")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise KubeconfigProblem(f"kubeconfig {path} is not valid YAML{where}: {problem}") \
            from None
    if not isinstance(data, dict):
        raise KubeconfigProblem(f"kubeconfig {path} is not a kubeconfig: a YAML mapping was "
                                f"expected, found {type(data).__name__}")
    return data


def _named(doc: Mapping[str, Any], section: str, path: Path) -> dict[str, Mapping[str, Any]]:
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise KubeconfigProblem(f"kubeconfig {path}: field {section} is not a list")
    found: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigProblem(f"kubeconfig {path}: {section}[{i}] has no name")
        inner = entry.get(section[:-1])
        found.setdefault(entry["name"], inner if isinstance(inner, dict) else {})
    return found


def _check_files(kind: str, name: str, entry: Mapping[str, Any], path: Path) -> None:
    for field in FILE_FIELDS[kind]:
        value = entry.get(field)
        if not value:
            continue
        target = Path(str(value)).expanduser()
        if not target.is_absolute():
            target = path.parent / target  # relative paths are relative to the kubeconfig
        if not target.is_file():
            raise KubeconfigProblem(f"kubeconfig {path}: {kind} {name!r} field {field}: file "
                                    f"{target} does not exist")
    for field in DATA_FIELDS[kind]:
        value = entry.get(field)
        if value and "-----" not in str(value):
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise KubeconfigProblem(f"kubeconfig {path}: {kind} {name!r} field {field} is "
                                        "not base64") from None


def check_document(doc: Mapping[str, Any], path: Path, context: str | None,
                   others: Sequence[tuple[Path, Mapping[str, Any]]] = ()) -> None:
    """Check that ``context`` (default: current-context) resolves to a cluster with a server
    and a user, and that every file they name exists.

    ``others`` are further files of a ``$KUBECONFIG`` list, merged as the client merges them
    (the first file that names an entry wins).
    """
    docs = [(path, doc), *others]
    contexts: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    clusters: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    users: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    current = None
    for p, d in docs:
        for table, section in ((contexts, "contexts"), (clusters, "clusters"), (users, "users")):
            for name, entry in _named(d, section, p).items():
                table.setdefault(name, (p, entry))
        current = current or d.get("current-context") or None
    chosen = context or current
    known = ", ".join(sorted(contexts)) or "none"
    if not chosen:
        raise KubeconfigProblem(f"kubeconfig {path} has no current-context; pass --context "
                                f"(contexts in the file: {known})")
    if chosen not in contexts:
        what = "--context" if context else "current-context"
        raise KubeconfigProblem(f"kubeconfig {path}: {what} {chosen!r} is not among its "
                                f"contexts ({known})")
    cpath, ctx = contexts[chosen]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name or cluster_name not in clusters:
        raise KubeconfigProblem(f"kubeconfig {cpath}: context {chosen!r} field cluster names "
                                f"{cluster_name!r}, which is not among its clusters")
    kpath, cluster = clusters[cluster_name]
    if not cluster.get("server"):
        raise KubeconfigProblem(f"kubeconfig {kpath}: cluster {cluster_name!r} has no server")
    _check_files("cluster", str(cluster_name), cluster, kpath)
    if user_name:
        if user_name not in users:
            raise KubeconfigProblem(f"kubeconfig {cpath}: context {chosen!r} field user names "
                                    f"{user_name!r}, which is not among its users")
        upath, user = users[user_name]
        _check_files("user", str(user_name), user, upath)


def check(given: Path | None, context: str | None,
          environ: Mapping[str, str] | None = None) -> None:
    """Check the kubeconfig the client will use (nothing to check inside a pod without one).

    Raises:
        KubeconfigProblem: One line naming the file and, where it applies, the field.
    """
    env = os.environ if environ is None else environ
    paths, explicit = candidate_paths(given, env)
    existing = [p for p in paths if p.exists()]
    if not existing:
        if not explicit and SERVICE_ACCOUNT.is_dir():
            return  # in a pod: the client uses its service account
        if explicit and len(paths) == 1:
            raise KubeconfigProblem(f"kubeconfig {paths[0]} does not exist")
        raise KubeconfigProblem(
            f"no kubeconfig: {', '.join(map(str, paths))} does not exist (pass --kubeconfig "
            "or set KUBECONFIG)")
    if given is not None:
        existing = [given]
    docs = [(p, load(p)) for p in existing]
    check_document(docs[0][1], docs[0][0], context, docs[1:])
