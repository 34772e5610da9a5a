"""The RBAC authorizer: Roles, ClusterRoles and their bindings, evaluated as the real one does.

A request is allowed when any rule of any role bound to the user (directly, through one of
its groups, or as a ServiceAccount) matches it; there are no deny rules. ``system:masters``
is allowed everything without a rule, like the real API server's superuser group.
Aggregated ClusterRoles are not evaluated (their rules are taken as written).

Example:
    >>> rule = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}
    >>> rule_matches(rule, Attributes("u", (), "get", "", "pods", "log", "ns", "p"))
    True
    >>> rule_matches(rule, Attributes("u", (), "get", "", "pods", None, "ns", "p"))
    False
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store

GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"

CLUSTER_ROLES = resource(GROUP, "clusterroles")
CLUSTER_ROLE_BINDINGS = resource(GROUP, "clusterrolebindings")
ROLES = resource(GROUP, "roles")
ROLE_BINDINGS = resource(GROUP, "rolebindings")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it (``path`` set only for non-resource URLs)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    api_group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None
    path: str | None = None


def _has(values: Sequence[str] | None, wanted: str) -> bool:
    return values is not None and ("*" in values or wanted in values)


def _resource_matches(resources: Sequence[str], plural: str, sub: str | None) -> bool:
    combined = f"{plural}/{sub}" if sub else plural
    for item in resources:
        if item in ("*", combined):
            return True
        if sub and item in (f"*/{sub}", f"{plural}/*"):
            return True
    return False


def _path_matches(urls: Sequence[str], path: str) -> bool:
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1]))
               for u in urls)


def rule_matches(rule: Mapping[str, Any], a: Attributes) -> bool:
    """Whether one PolicyRule allows the request ``a``."""
    if not _has(rule.get("verbs"), a.verb):
        return False
    if a.path is not None:
        return _path_matches(rule.get("nonResourceURLs") or [], a.path)
    if not _has(rule.get("apiGroups"), a.api_group):
        return False
    if not _resource_matches(rule.get("resources") or [], a.resource, a.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or (a.name is not None and a.name in names)


def subject_matches(subject: Mapping[str, Any], a: Attributes, binding_ns: str) -> bool:
    """Whether a binding's subject is the requesting user or one of its groups."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(name == a.user)
    if kind == "Group":
        return name in a.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return a.user == f"{SA_PREFIX}{ns}:{name}"
    return False


class Authorizer:
    """Evaluates requests against the RBAC objects in a :class:`Store`.

    Args:
        store: Where the Roles, ClusterRoles and bindings live.
        audit: When set, a JSON line per decision on a subject outside ``system:masters``
            is appended there (what a run asked for, to prove a manifest is the least it
            needs).
    """

    def __init__(self, store: Store, audit: Path | None = None) -> None:
        self.store = store
        self.audit = audit

    def _rules(self, a: Attributes) -> Iterator[Mapping[str, Any]]:
        for binding in self.store.items(CLUSTER_ROLE_BINDINGS):
            if any(subject_matches(s, a, "") for s in binding.get("subjects") or []):
                yield from self._role_rules(binding.get("roleRef") or {}, None)
        if a.namespace and a.path is None:
            for binding in self.store.items(ROLE_BINDINGS, a.namespace):
                if any(subject_matches(s, a, a.namespace) for s in binding.get("subjects") or []):
                    yield from self._role_rules(binding.get("roleRef") or {}, a.namespace)

    def _role_rules(self, ref: Mapping[str, Any], namespace: str | None
                    ) -> Iterator[Mapping[str, Any]]:
        if ref.get("kind") == "ClusterRole":
            role = self.store.find(CLUSTER_ROLES, "", str(ref.get("name", "")))
        elif ref.get("kind") == "Role" and namespace:
            role = self.store.find(ROLES, namespace, str(ref.get("name", "")))
        else:
            role = None
        if role is not None:
            yield from role.get("rules") or []

    def allows(self, a: Attributes, record: bool = True) -> bool:
        """The decision for ``a`` (recorded in the audit file when one is set, unless it
        only answers an access review)."""
        if MASTERS in a.groups:
            return True
        allowed = any(rule_matches(r, a) for r in self._rules(a))
        if self.audit is not None and record:
            with self.audit.open("a") as out:
                out.write(json.dumps({**asdict(a), "allowed": allowed}) + "\n")
        return allowed


def read_audit(path: Path, user: str | None = None) -> list[tuple[Attributes, bool]]:
    """The decisions in an audit file as ``(Attributes, allowed)`` pairs."""
    out: list[tuple[Attributes, bool]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        data = json.loads(line)
        allowed = bool(data.pop("allowed"))
        data["groups"] = tuple(data["groups"])
        a = Attributes(**data)
        if user is None or a.user == user:
            out.append((a, allowed))
    return out


def _cluster_role(name: str, rules: list[Obj]) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules}


def _group_binding(name: str, role: str, group: str) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": group}]}


DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz",
                  "/version", "/version/", "/openapi", "/openapi/*"]


def bootstrap_policy() -> list[tuple[str, str, Obj]]:
    """The default roles and bindings every cluster has (the ones the lab needs)."""
    return [
        (GROUP, "clusterroles", _cluster_role("cluster-admin", [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]}])),
        (GROUP, "clusterroles", _cluster_role("system:discovery", [
            {"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}])),
        (GROUP, "clusterroles", _cluster_role("system:basic-user", [
            {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"],
             "verbs": ["create"]}])),
        (GROUP, "clusterrolebindings", _group_binding("cluster-admin", "cluster-admin", MASTERS)),
        (GROUP, "clusterrolebindings", _group_binding("system:basic-user", "system:basic-user",
                                                      AUTHENTICATED)),
        (GROUP, "clusterrolebindings", _group_binding("system:discovery", "system:discovery",
                                                      AUTHENTICATED)),
    ]
