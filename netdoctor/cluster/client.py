"""Create the API client and turn access problems into one clear message per cause.

Every call to the API goes through :func:`bounded`, because kr8s has unbounded waits
(``exec`` loops on ``ready()``, ``wait(timeout=None)``) and a hung API must not hang the run.

Example:
    >>> classify_http(403, "pods is forbidden: User \\"viewer\\" cannot create ...", "create pods")
    'forbidden: create pods: pods is forbidden: User "viewer" cannot create ...'
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import kr8s
import kr8s.asyncio

T = TypeVar("T")
API_CALL_TIMEOUT = 15.0
"""Seconds one API request may take before the run treats the API as unreachable."""
LIST_PAGE = 500
"""Objects per list request (the API server pages larger lists with ``continue``)."""


POLICY_MARKS = ("violates PodSecurity", "admission webhook")
"""A 403 with these words is an admission policy refusing the object, not RBAC."""


class DeadlineExceeded(Exception):
    """A bounded call did not finish in time; the message names what was awaited."""


class AccessProblem(Exception):
    """The cluster cannot be used as configured; ``str(exc)`` is the one line to show."""


class Forbidden(Exception):
    """RBAC refused a request; ``str(exc)`` names the verb, resource and the API's words."""


async def bounded(aw: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``aw`` for at most ``seconds``.

    Raises:
        DeadlineExceeded: With ``what`` and the deadline in the message.
    """
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise DeadlineExceeded(f"{what}: no answer within {seconds:g}s") from None


def status_code(exc: BaseException) -> int | None:
    """The HTTP status behind a kr8s/httpx error, if any."""
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def classify_http(code: int, message: str, action: str) -> str:
    """One line for an HTTP error of ``action`` (``"list nodes"``)."""
    if code == 401:
        return (f"unauthorized: {action} was rejected with 401; the credentials in the "
                "kubeconfig are missing, wrong or expired (log in again or renew the token)")
    if code == 403 and any(mark in message for mark in POLICY_MARKS):
        return f"policy rejection: {action}: {message}"
    if code == 403:
        return f"forbidden: {action}: {message}"
    return f"{action} failed with HTTP {code}: {message}"


@dataclass(frozen=True)
class Target:
    """Which cluster to talk to, as configured."""

    kubeconfig: Path | None
    context: str | None

    def describe(self) -> str:
        """``kubeconfig X, context Y`` for messages."""
        where = str(self.kubeconfig) if self.kubeconfig else (
            "$KUBECONFIG or ~/.kube/config, else the pod's ServiceAccount (in-cluster)")
        return f"kubeconfig {where}, context {self.context or '(current)'}"


class Cluster:
    """A kr8s API with bounded, dict-returning helpers (API objects, never tables)."""

    def __init__(self, api: Any, target: Target, timeout: float = API_CALL_TIMEOUT) -> None:
        self.api = api
        self.target = target
        self.timeout = timeout

    @property
    def server(self) -> str:
        """The API server URL from the kubeconfig."""
        return str(getattr(self.api.auth, "server", "") or "")

    async def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Raw objects of ``kind`` (all namespaces when ``namespace`` is None).

        The items of the list response as they are (plus the ``kind`` and ``apiVersion``
        a list leaves out of its items): no kr8s object per item, whose construction was
        a third of the client's CPU in a 12-node run that polls lists of pods.
        """

        async def collect() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            params = {"limit": str(LIST_PAGE)}
            while True:
                async with self.api.async_get_kind(
                        kind, namespace=namespace or kr8s.ALL, label_selector=selector or None,
                        params=dict(params)) as (cls, resp):
                    page = resp.json()
                for item in page.get("items") or []:
                    item.setdefault("kind", cls.kind)
                    item.setdefault("apiVersion", cls.version)
                    out.append(item)
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return out
                params["continue"] = str(token)

        where = f" in {namespace}" if namespace else ""
        return await bounded(collect(), self.timeout, f"list {kind}{where}")

    async def request(
        self, method: str, path: str, *, namespace: str | None = None, version: str = "v1",
        base: str = "", params: dict[str, str] | None = None, body: Any = None,
        what: str = "",
    ) -> httpx.Response:
        """One raw API request (``path`` below the namespace, e.g. ``pods/x/log``)."""

        async def call() -> httpx.Response:
            kwargs: dict[str, Any] = {}
            if params:
                kwargs["params"] = params
            if body is not None:
                kwargs["json"] = body
            async with self.api.call_api(method, version=version, base=base,
                                         namespace=namespace, url=path, **kwargs) as resp:
                return resp  # type: ignore[no-any-return]

        return await bounded(call(), self.timeout, what or f"{method} {path}")


def _server_of(target: Target) -> str:
    """The server URL of the chosen context, best effort (for messages only)."""
    import os

    import yaml

    path = target.kubeconfig or Path(
        os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    try:
        conf = yaml.safe_load(path.read_text())
        ctx_name = target.context or conf.get("current-context")
        ctx = next(c["context"] for c in conf["contexts"] if c["name"] == ctx_name)
        return str(next(c["cluster"]["server"] for c in conf["clusters"]
                        if c["name"] == ctx["cluster"]))
    except Exception:
        return ""


def explain(exc: BaseException, target: Target, timeout: float, action: str) -> str:
    """One line saying why ``action`` against ``target`` failed."""
    where = _server_of(target) or target.describe()
    if isinstance(exc, DeadlineExceeded):
        return f"the API server at {where} did not answer within {timeout:g}s ({action})"
    if isinstance(exc, httpx.TransportError | OSError | kr8s.APITimeoutError) and not \
            isinstance(exc, FileNotFoundError):
        return f"cannot reach the API server at {where}: {exc or type(exc).__name__}"
    if isinstance(exc, kr8s.ServerError | httpx.HTTPStatusError):
        return classify_http(status_code(exc) or 0, str(exc), f"{action} at {where}")
    return f"cannot use {target.describe()}: {type(exc).__name__}: {exc}"


async def connect(target: Target, timeout: float = API_CALL_TIMEOUT) -> Cluster:
    """Create the client and prove the API answers and lets us list nodes.

    Raises:
        AccessProblem: Bad kubeconfig, unreachable API, 401, or 403 on listing nodes.
    """
    if target.kubeconfig is not None and not target.kubeconfig.is_file():
        raise AccessProblem(f"kubeconfig {target.kubeconfig} does not exist or is not a file")
    try:
        api = await bounded(
            kr8s.asyncio.api(kubeconfig=str(target.kubeconfig) if target.kubeconfig else None,
                             context=target.context),
            timeout, "connect")
        cluster = Cluster(api, target, timeout)
        await cluster.list("nodes")
    except Exception as exc:
        raise AccessProblem(explain(exc, target, timeout, "list nodes")) from None
    return cluster


async def forbidden_or_none(aw: Awaitable[Any], action: str) -> str | None:
    """Run ``aw``; return the forbidden message when RBAC refuses it, else ``None``."""
    try:
        await aw
    except kr8s.ServerError as exc:
        if status_code(exc) in (401, 403):
            return classify_http(status_code(exc) or 403, str(exc), action)
        raise
    return None


