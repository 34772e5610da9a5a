"""Identities in a running lab: apply manifests as admin, and kubeconfigs for ServiceAccounts.

Everything goes through the lab's API as a cluster user would (admin kubeconfig for applying,
the TokenRequest subresource for a ServiceAccount's token), so what a ServiceAccount may do
is decided by the RBAC objects the manifests created, nothing else.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from netdoctor.lab import certs
from netdoctor.lab.api.resources import BY_KIND

TOKEN_SECONDS = 3600


class AccessError(Exception):
    """The lab's API refused a request of these helpers; the message is the API's."""


def _client(state_dir: Path) -> tuple[httpx.Client, str]:
    conf = yaml.safe_load((state_dir / "kubeconfig").read_text())
    server = conf["clusters"][0]["cluster"]["server"]
    token = conf["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cafile=str(state_dir / "ca.crt"))
    return httpx.Client(base_url=server, verify=ctx, timeout=15.0,
                        headers={"Authorization": f"Bearer {token}"}), server


def object_path(doc: Mapping[str, Any], named: bool = False) -> str:
    """The API path of a manifest's object (its collection unless ``named``)."""
    res = BY_KIND[(doc["apiVersion"], doc["kind"])]
    base = f"/apis/{res.api_version}" if res.group else "/api/v1"
    if res.namespaced:
        base += f"/namespaces/{doc['metadata'].get('namespace') or 'default'}"
    path = f"{base}/{res.plural}"
    return f"{path}/{doc['metadata']['name']}" if named else path


def load(path: Path) -> list[dict[str, Any]]:
    """The documents of a YAML manifest (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def apply(state_dir: Path, docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Create (or replace) each object as the lab's admin; return ``Kind name`` per object.

    Raises:
        AccessError: The API refused an object.
    """
    client, _ = _client(state_dir)
    done = []
    with client:
        for doc in docs:
            resp = client.post(object_path(doc), json=doc)
            if resp.status_code == 409:
                current = client.get(object_path(doc, named=True)).json()
                body = {**doc, "metadata": {**doc["metadata"], "resourceVersion":
                                            current["metadata"]["resourceVersion"]}}
                resp = client.put(object_path(doc, named=True), json=body)
            if resp.status_code >= 400:
                raise AccessError(f"{doc['kind']} {doc['metadata']['name']}: "
                                  f"{resp.json().get('message', resp.text)}")
            done.append(f"{doc['kind']} {doc['metadata']['name']}")
    return done


def delete(state_dir: Path, docs: Iterable[Mapping[str, Any]]) -> None:
    """Delete each object as the lab's admin (absent ones are fine)."""
    client, _ = _client(state_dir)
    with client:
        for doc in docs:
            resp = client.delete(object_path(doc, named=True))
            if resp.status_code >= 400 and resp.status_code != 404:
                raise AccessError(resp.json().get("message", resp.text))


def service_account_kubeconfig(state_dir: Path, namespace: str, name: str, out: Path) -> Path:
    """Write a kubeconfig for ServiceAccount ``namespace/name`` (a TokenRequest token).

    Raises:
        AccessError: The ServiceAccount does not exist or the token was refused.
    """
    client, server = _client(state_dir)
    with client:
        resp = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                           json={"apiVersion": "authentication.k8s.io/v1",
                                 "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": TOKEN_SECONDS}})
    if resp.status_code >= 400:
        raise AccessError(resp.json().get("message", resp.text))
    token = resp.json()["status"]["token"]
    certs.write_kubeconfig(out, server, state_dir / "ca.crt", token,
                           f"system:serviceaccount:{namespace}:{name}")
    return out
