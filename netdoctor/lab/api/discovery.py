"""API discovery documents: /version, /api, /apis and the per-version resource lists.

Both forms kubectl understands are served: the classic documents and the aggregated
``apidiscovery.k8s.io/v2`` list (one request per root instead of one per group).
"""

from __future__ import annotations

from typing import Any

from netdoctor.lab.api.resources import Resource, groups

Obj = dict[str, Any]

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

VERSION: Obj = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b", "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:37:08Z", "goVersion": "go1.22.9", "compiler": "gc",
    "platform": "linux/amd64",
}

# Resources that `kubectl get all` includes.
ALL_CATEGORY = {"pods", "services", "deployments", "replicasets", "daemonsets"}

# kind, verbs and (for scale) group/version of each subresource.
SUBRESOURCES: dict[str, tuple[str | None, tuple[str, ...], str | None, str | None]] = {
    "status": (None, ("get", "patch", "update"), None, None),
    "log": ("Pod", ("get",), None, None),
    "exec": ("PodExecOptions", ("create", "get"), None, None),
    "scale": ("Scale", ("get", "patch", "update"), "autoscaling", "v1"),
    "eviction": ("Eviction", ("create",), "policy", "v1"),
    "token": ("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
}


def wants_aggregated(accept: str) -> bool:
    """Whether an Accept header asks for aggregated discovery (v2)."""
    return any("as=APIGroupDiscoveryList" in part and "v=v2" in part.replace(" ", "")
               and "v=v2beta1" not in part for part in accept.split(","))


def api_versions(server_address: str) -> Obj:
    """The ``/api`` document."""
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, version: str) -> Obj:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def api_group(name: str) -> Obj | None:
    """The ``/apis/<group>`` document, ``None`` for an unknown group."""
    served = groups().get(name)
    if not name or not served:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, served[0].version)}


def api_group_list() -> Obj:
    """The ``/apis`` document."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        _group(name, rs[0].version) for name, rs in groups().items() if name]}


def _entries(res: Resource) -> list[Obj]:
    main: Obj = {"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced,
                 "kind": res.kind, "verbs": list(res.verbs)}
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.plural in ALL_CATEGORY:
        main["categories"] = ["all"]
    out = [main]
    for sub in res.subresources:
        kind, verbs, group, version = SUBRESOURCES[sub]
        # No shortNames here: kubectl warns about shortNames on subresources.
        entry: Obj = {"name": f"{res.plural}/{sub}", "singularName": "",
                      "namespaced": res.namespaced, "kind": kind or res.kind, "verbs": list(verbs)}
        if group:
            entry.update(group=group, version=version)
        out.append(entry)
    return out


def resource_list(group: str, version: str) -> Obj | None:
    """The ``/api/v1`` or ``/apis/<group>/<version>`` document, ``None`` if not served."""
    served = [r for r in groups().get(group, []) if r.version == version]
    if not served:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": served[0].api_version,
            "resources": [e for r in served for e in _entries(r)]}


def _aggregated_resource(res: Resource) -> Obj:
    entry: Obj = {
        "resource": res.plural, "singularResource": res.singular,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster", "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.plural in ALL_CATEGORY:
        entry["categories"] = ["all"]
    subs = []
    for sub in res.subresources:
        kind, verbs, group, version = SUBRESOURCES[sub]
        subs.append({"subresource": sub, "verbs": list(verbs), "responseKind": {
            "group": group if group is not None else res.group,
            "version": version or res.version, "kind": kind or res.kind}})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(core: bool) -> Obj:
    """The aggregated discovery list for ``/api`` (``core``) or ``/apis``."""
    items = []
    for name, served in groups().items():
        if (name == "") != core:
            continue
        items.append({"metadata": {"name": name, "creationTimestamp": None}, "versions": [
            {"version": served[0].version, "freshness": "Current",
             "resources": [_aggregated_resource(r) for r in served]}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}
