"""Create the API client and turn access problems into one clear message per cause.

Every call to the API goes through :func:`bounded`, because kr8s has unbounded waits
(``exec`` loops on ``ready()``, ``wait(timeout=None)``) and a hung API must not hang the run.

Example:
    >>> classify_http(403, "pods is forbidden: User \\"viewer\\" cannot create ...", "create pods")
    'forbidden: create pods: pods is forbidden: User "viewer" cannot create ...'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import kr8s
import kr8s.asyncio
import tenacity

from netdoctor.cluster import kubeconfig
from netdoctor.cluster.ratelimit import TokenBucket, limit

T = TypeVar("T")
API_CALL_TIMEOUT = 15.0
"""Seconds one API request may take before the run treats the API as unreachable."""
LIST_PAGE = 500
"""Objects per list request (the API server pages larger lists with ``continue``)."""
READ_BUDGET = 60.0
"""Seconds an idempotent read (GET, LIST) keeps retrying a failing API before giving up."""
CONNECT_BUDGET = 10.0
"""Seconds the first request (list nodes) keeps retrying before the cluster counts as
unusable."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth asking again: throttled, or the API server (or what is in front of it)
failed. Anything else (403, 404, 409, 422) is the API's real answer."""
MAX_RETRY_AFTER = 30.0
"""The most a ``Retry-After`` header may make a read wait at once."""


POLICY_MARKS = ("violates PodSecurity", "admission webhook")
"""A 403 with these words is an admission policy refusing the object, not RBAC."""


class DeadlineExceeded(Exception):
    """A bounded call did not finish in time; the message names what was awaited."""


class DiscoveryFailed(Exception):
    """The API could not say where a kind lives (its discovery request failed)."""


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


def transient(exc: BaseException) -> bool:
    """The request may succeed if asked again: no answer, a dropped connection, 429 or 5xx."""
    if isinstance(exc, DeadlineExceeded | DiscoveryFailed | httpx.TransportError
                  | kr8s.APITimeoutError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return True
    return status_code(exc) in RETRY_STATUSES


def retry_after(exc: BaseException) -> float | None:
    """Seconds the API asked us to wait (``Retry-After``), capped; ``None`` when it did not."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER) if raw is not None else None
    except ValueError:
        return None


def problem_line(exc: BaseException) -> str:
    """A short reason for a failed request (no traceback)."""
    code = status_code(exc)
    if code is not None:
        return f"HTTP {code}" + (" (throttled)" if code == 429 else "")
    if isinstance(exc, DeadlineExceeded):
        return str(exc).rpartition(": ")[2]  # the message starts with what was awaited
    return str(exc) or type(exc).__name__


class _Backoff(tenacity.wait.wait_base):
    """Exponential back-off (0.5 s doubling to 8 s), or what ``Retry-After`` says."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            return asked
        return float(min(0.5 * 2 ** (retry_state.attempt_number - 1), 8.0))


async def retried(call: Callable[[], Awaitable[T]], what: str, *, budget: float,
                  timeout: float, report: Callable[[str, str], None] | None = None) -> T:
    """Run the idempotent request ``call`` (each try bounded by ``timeout``), retrying
    :func:`transient` failures with back-off and honouring ``Retry-After``, until it succeeds
    or ``budget`` seconds have passed; then the last error is raised. ``report(key, line)``
    hears of each retried request once and of giving up."""
    started = time.monotonic()

    async def once() -> T:
        return await bounded(call(), timeout, what)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and report is not None:
            report(f"retry {what}", f"API problem: {what}: {problem_line(exc)}; retrying for "
                                    f"up to {budget:g}s")

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(transient),
        stop=tenacity.stop_before_delay(budget),
        wait=_Backoff(),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return await retrying(once)
    except Exception as exc:
        if transient(exc) and report is not None:
            report(f"gave up {what}", f"API problem: {what}: gave up after "
                                      f"{time.monotonic() - started:.0f}s: {problem_line(exc)}")
        raise


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

    def __init__(self, api: Any, target: Target, timeout: float = API_CALL_TIMEOUT,
                 read_budget: float = READ_BUDGET, bucket: TokenBucket | None = None) -> None:
        self.api = api
        self.bucket = bucket or TokenBucket()
        """The run's request limiter (every request of :attr:`api` waits for it once
        :func:`connect` made the client)."""
        self.target = target
        self.timeout = timeout
        self.read_budget = read_budget
        self.problems: list[str] = []
        """One line per distinct API problem met (what, and why), in order."""
        self.notify: Callable[[str], None] | None = None
        """Called once with each new line of :attr:`problems` (the terminal, in a run)."""
        self._seen: set[str] = set()

    def _problem(self, key: str, line: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.problems.append(line)
            if self.notify is not None:
                self.notify(line)

    async def read(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Run the idempotent read ``call`` (each try bounded by :attr:`timeout`), retrying
        transient failures with back-off, honouring ``Retry-After``, until it succeeds or
        :attr:`read_budget` seconds have passed; then the last error is raised.

        Only reads go through here (and :meth:`idempotent` requests): a write that timed out
        may have happened, and is never repeated blindly.
        """
        return await self.idempotent(call, what, self.read_budget)

    async def idempotent(self, call: Callable[[], Awaitable[T]], what: str,
                         budget: float) -> T:
        """:meth:`read` for any request that is safe to repeat (a GET, a LIST, a DELETE by
        name whose repeat answers 404), retried for up to ``budget`` seconds."""
        return await retried(call, what, budget=budget, timeout=self.timeout,
                             report=self._problem)

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
        where = f" in {namespace}" if namespace else ""
        out: list[dict[str, Any]] = []
        params = {"limit": str(LIST_PAGE)}
        pages = 0
        while True:
            pages += 1
            # Each page has its own deadline and retries: a long list is never cut short by
            # one deadline for all of it, and a page that cannot be read fails the whole list
            # (an incomplete list is an error, never a shorter answer).
            page, cls = await self.read(partial(self._page, kind, namespace, selector,
                                                dict(params)),
                                        f"list {kind}{where}" + (f" (page {pages})"
                                                                 if pages > 1 else ""))
            for item in page.get("items") or []:
                item.setdefault("kind", cls.kind)
                item.setdefault("apiVersion", cls.version)
                out.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return out
            params["continue"] = str(token)

    async def _page(self, kind: str, namespace: str | None, selector: str | None,
                    params: dict[str, str]) -> tuple[dict[str, Any], Any]:
        """One page of a list: the response body and the kind's kr8s class."""
        try:
            async with self.api.async_get_kind(
                    kind, namespace=namespace or kr8s.ALL, label_selector=selector or None,
                    params=params) as (cls, resp):
                return resp.json(), cls
        except UnboundLocalError as exc:
            # kr8s only warns when the kind's discovery request fails, then trips over the
            # name it never learnt: the API failed, not the list.
            raise DiscoveryFailed(f"discovery of {kind} failed") from exc

    async def request(
        self, method: str, path: str, *, namespace: str | None = None, version: str = "v1",
        base: str = "", params: dict[str, str] | None = None, body: Any = None,
        what: str = "", safe: bool = False,
    ) -> httpx.Response:
        """One raw API request (``path`` below the namespace, e.g. ``pods/x/log``); a GET, or
        a request marked ``safe`` (it changes nothing: an access review), is retried as
        :meth:`read` does; any other is sent once."""

        async def call() -> httpx.Response:
            kwargs: dict[str, Any] = {}
            if params:
                kwargs["params"] = params
            if body is not None:
                kwargs["json"] = body
            async with self.api.call_api(method, version=version, base=base,
                                         namespace=namespace, url=path, **kwargs) as resp:
                return resp  # type: ignore[no-any-return]

        what = what or f"{method} {path}"
        if safe or method.upper() == "GET":
            return await self.read(call, what)
        return await bounded(call(), self.timeout, what)


def server_url(target: Target) -> str:
    """The API server URL the target's kubeconfig names ("" when it cannot be read)."""
    return _server_of(target)


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


async def connect(target: Target, timeout: float = API_CALL_TIMEOUT,
                  bucket: TokenBucket | None = None) -> Cluster:
    """Create the client (its requests limited by ``bucket``, default
    :class:`TokenBucket`'s defaults) and prove the API answers and lets us list nodes.

    Raises:
        AccessProblem: Bad kubeconfig, unreachable API, 401, or 403 on listing nodes.
    """
    try:
        kubeconfig.check(target.kubeconfig, target.context)
    except kubeconfig.KubeconfigProblem as exc:
        raise AccessProblem(str(exc)) from None
    try:
        api = await retried(
            lambda: kr8s.asyncio.api(
                kubeconfig=str(target.kubeconfig) if target.kubeconfig else None,
                context=target.context),
            "connect", budget=CONNECT_BUDGET, timeout=timeout)
        # The first contact retries only briefly: a wrong server or port should be said at
        # once, not after a minute of back-off.
        cluster = Cluster(api, target, timeout, read_budget=CONNECT_BUDGET, bucket=bucket)
        limit(api, cluster.bucket)
        await cluster.list("nodes")
        cluster.read_budget = READ_BUDGET
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


