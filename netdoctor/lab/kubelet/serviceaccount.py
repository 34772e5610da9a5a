"""The ServiceAccount token volume a kubelet projects into pods that automount it.

``/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}``, read-only, with
a token issued for the pod's ServiceAccount through the API server's token issuer (the same
tokens the API authenticates), so in-cluster clients (kr8s, the ``kubernetes`` client,
kubectl) find their credentials where they look for them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Obj, Store
from netdoctor.lab.kubelet.process import Mount

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNTS = resource("", "serviceaccounts")
TokenIssuer = Callable[[str, str], str]
"""``(namespace, service account) -> bearer token``."""


def automounted(pod: Obj, store: Store) -> str | None:
    """The ServiceAccount whose token the pod gets, or ``None`` when it opts out."""
    spec, ns = pod["spec"], pod["metadata"]["namespace"]
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    sa = store.peek(SERVICE_ACCOUNTS, ns, name)
    if sa is None:
        return None
    wanted = spec.get("automountServiceAccountToken")
    if wanted is None:
        wanted = sa.get("automountServiceAccountToken", True)
    return name if wanted else None


def token_volume(pod: Obj, store: Store, directory: Path, ca_file: Path,
                 issue: TokenIssuer | None) -> Mount | None:
    """Write the pod's token files once and return their mount (``None``: no token)."""
    name = automounted(pod, store)
    if name is None or issue is None:
        return None
    token = directory / "token"
    if not token.exists():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(ca_file.read_bytes())
        (directory / "namespace").write_text(pod["metadata"]["namespace"])
        token.write_text(issue(pod["metadata"]["namespace"], name))
        token.chmod(0o600)
    return Mount(directory, MOUNT_PATH, read_only=True)
