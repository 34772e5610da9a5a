"""The lab's Kubernetes API server (aiohttp).

Serves discovery, CRUD, watch, Table output, ``pods/log`` and ``pods/exec`` for
the resources in :mod:`netdoctor.lab.api.resources`, backed by a
:class:`~netdoctor.lab.api.store.Store`, for kubectl, kr8s and the official client.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from netdoctor.lab.api import discovery
from netdoctor.lab.api.apifaults import STATE as API_FAULTS
from netdoctor.lab.api.apifaults import ApiFaultState, api_faults
from netdoctor.lab.api.auth import (
    Access,
    authenticate,
    authorize,
    authorize_path,
    issue_token,
    self_access_review,
)
from netdoctor.lab.api.crud import NOT_FOUND, Target, handle, read_json, respond
from netdoctor.lab.api.rbac import Authorizer
from netdoctor.lab.api.requestcount import REQUESTS, count_requests
from netdoctor.lab.api.runtime import PodRuntime
from netdoctor.lab.api.store import ApiError, Store

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
RUNTIME = web.AppKey("runtime", PodRuntime)
TOKENS = web.AppKey("tokens", dict[str, Access])
AUTHORIZER = web.AppKey("authorizer", Authorizer)
ACCESS = web.RequestKey("access", Access)

# Real clusters answer these to anyone (system:public-info-viewer).
OPEN_PATHS = {"/version", "/version/", "/healthz", "/livez", "/readyz"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into the ``Status`` bodies clients parse."""
    try:
        return await handler(request)
    except ApiError as err:
        return respond(err.status(), err.code)
    except web.HTTPException:
        raise
    except Exception as err:
        log.exception("internal error serving %s %s", request.method, request.path)
        return respond(ApiError(500, "InternalError", f"Internal error occurred: {err}").status(),
                       500)


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a known bearer token except on the public endpoints."""
    if request.path not in OPEN_PATHS:
        request[ACCESS] = authenticate(request.app[TOKENS], request.headers.get("Authorization"),
                                       request.app[STORE])
    return await handler(request)


async def version(request: web.Request) -> web.Response:
    """``GET /version``."""
    return respond(discovery.VERSION)


async def health(request: web.Request) -> web.Response:
    """``GET /healthz``, ``/livez``, ``/readyz``."""
    return web.Response(text="ok")


def _discovery(body: dict[str, object] | None) -> web.Response:
    if body is None:
        raise NOT_FOUND
    return respond(body)


async def core(request: web.Request) -> web.StreamResponse:
    """Everything under ``/api``."""
    segments = [s for s in request.match_info.get("tail", "").split("/") if s]
    if len(segments) < 2:
        _discovery_allowed(request)
    if not segments:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return web.json_response(discovery.aggregated(core=True),
                                     content_type=discovery.AGGREGATED_TYPE)
        return respond(discovery.api_versions(request.host))
    if len(segments) == 1:
        return _discovery(discovery.resource_list("", segments[0]))
    return await _resource(request, "", segments[0], segments[1:])


async def named_groups(request: web.Request) -> web.StreamResponse:
    """Everything under ``/apis``."""
    segments = [s for s in request.match_info.get("tail", "").split("/") if s]
    if len(segments) < 3:
        _discovery_allowed(request)
    if not segments:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return web.json_response(discovery.aggregated(core=False),
                                     content_type=discovery.AGGREGATED_TYPE)
        return respond(discovery.api_group_list())
    if len(segments) == 1:
        return _discovery(discovery.api_group(segments[0]))
    if len(segments) == 2:
        return _discovery(discovery.resource_list(segments[0], segments[1]))
    return await _resource(request, segments[0], segments[1], segments[2:])


async def _resource(request: web.Request, group: str, version: str,
                    segments: list[str]) -> web.StreamResponse:
    target = Target.parse(group, version, segments)
    access, authorizer = request[ACCESS], request.app[AUTHORIZER]
    verbs = [target.verb(request.method, request.query)]
    if target.subresource == "exec" and request.method == "GET":
        # A websocket upgrade is a GET: "get" by its method, and "create" as well (the
        # check real API servers add so a websocket needs what a SPDY POST needs).
        verbs.insert(0, "get")
    # Every authenticated user may ask what it may do (system:basic-user).
    for verb in verbs if target.res.plural != "selfsubjectaccessreviews" else ():
        authorize(access, verb, target.res, target.subresource, target.namespace, target.name,
                  authorizer)
    if target.res.plural == "selfsubjectaccessreviews":
        if request.method != "POST":
            raise NOT_FOUND
        return respond(self_access_review(access, authorizer, await read_json(request)), 201)
    if target.res.plural == "serviceaccounts" and target.subresource == "token":
        if request.method != "POST" or target.namespace is None or target.name is None:
            raise NOT_FOUND
        return respond(issue_token(request.app[TOKENS], request.app[STORE], target.namespace,
                                   target.name, await read_json(request, required=False)), 201)
    return await handle(request.app[STORE], request.app[RUNTIME], target, request)


def _discovery_allowed(request: web.Request) -> None:
    authorize_path(request[ACCESS], "get", request.path, request.app[AUTHORIZER])


async def not_served(request: web.Request) -> web.Response:
    """Anything else (e.g. ``/openapi/v2``, so kubectl needs ``--validate=false``)."""
    raise NOT_FOUND


def make_app(store: Store, runtime: PodRuntime, tokens: dict[str, Access],
             authorizer: Authorizer | None = None,
             faults: ApiFaultState | None = None) -> web.Application:
    """Build the API server application.

    Args:
        store: The objects to serve.
        runtime: Runs ``pods/exec`` commands and reads ``pods/log``.
        tokens: Bearer token -> who it is and what it may do; ServiceAccount tokens issued
            through ``serviceaccounts/NAME/token`` are added to it.
        authorizer: Decides requests of RBAC subjects (default: RBAC over ``store``).
        faults: The API faults in force (see :mod:`netdoctor.lab.api.apifaults`); the lab's
            control socket sets them.

    Returns:
        The aiohttp application; serve it with :func:`serve`.
    """
    app = web.Application(middlewares=[count_requests, api_faults, status_errors,
                                       authentication],
                          client_max_size=16 * 1024 * 1024)
    app[REQUESTS] = Counter()
    app[STORE], app[RUNTIME], app[TOKENS] = store, runtime, tokens
    app[AUTHORIZER] = authorizer or Authorizer(store)
    app[API_FAULTS] = faults or ApiFaultState()
    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, health)
    app.router.add_route("*", "/api", core)
    app.router.add_route("*", "/api/{tail:.*}", core)
    app.router.add_route("*", "/apis", named_groups)
    app.router.add_route("*", "/apis/{tail:.*}", named_groups)
    app.router.add_route("*", "/{tail:.*}", not_served)
    return app


async def serve(app: web.Application, sockets: list[socket.socket],
                ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Serve ``app`` on already-bound listening sockets.

    Args:
        app: From :func:`make_app`.
        sockets: Bound (listening or not) TCP sockets, e.g. one on 127.0.0.1 and one
            made inside a network namespace.
        ssl_context: Server TLS context, or ``None`` for plain HTTP.

    Returns:
        The runner; ``await runner.cleanup()`` stops serving.
    """
    # Cancel handlers whose client went away, so abandoned watches end at once.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    return runner
