"""The lab's CA, serving certificates and kubeconfigs."""

from __future__ import annotations

import base64
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
import yaml

API_NAMES = (
    "127.0.0.1",
    "localhost",
    "192.168.4.10",
    "10.96.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
WEB_NAMES = ("example.com", "www.example.com", "192.0.2.10")


@dataclass(frozen=True)
class LabCerts:
    """Files written into the state dir, and the API server's TLS context."""

    ca_file: Path
    api_context: ssl.SSLContext
    web_cert: Path


def make(state_dir: Path, extra_api_names: tuple[str, ...] = ()) -> LabCerts:
    """Create a CA, the API server's certificate and the lab web server's certificate.

    ``extra_api_names`` adds names to the API certificate (the ``kubernetes`` Service IP
    of a profile with another service CIDR).
    """
    ca = trustme.CA(organization_name="netdoctor lab")
    ca_file = state_dir / "ca.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    api = ca.issue_cert(*dict.fromkeys((*API_NAMES, *extra_api_names)))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    api.configure_cert(ctx)
    web = ca.issue_cert(*WEB_NAMES)
    web_file = state_dir / "web.pem"
    web.private_key_and_cert_chain_pem.write_to_path(str(web_file))
    web_file.chmod(0o600)
    return LabCerts(ca_file, ctx, web_file)


def new_token() -> str:
    """A random bearer token."""
    return secrets.token_hex(24)


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str, user: str) -> None:
    """A kubeconfig for ``server`` with an embedded CA and a bearer token (mode 0600)."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": "netdoctor-lab",
                "cluster": {"server": server, "certificate-authority-data": ca_data},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": f"{user}@netdoctor-lab",
                "context": {"cluster": "netdoctor-lab", "user": user, "namespace": "default"},
            }
        ],
        "current-context": f"{user}@netdoctor-lab",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
