"""Requests on resources: get, list, watch, create, update, patch, delete, logs, exec.

Each handler takes the parsed :class:`Target` and returns the response the real
API server would send: the object, a list, a Table or a Status.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from netdoctor.lab.api import disruption, execws, tables, watch
from netdoctor.lab.api.patch import apply_patch
from netdoctor.lab.api.resources import Resource, groups
from netdoctor.lab.api.runtime import PodRuntime
from netdoctor.lab.api.store import ApiError, Store, not_found

Obj = dict[str, Any]

NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
# Deletes that answer with the object (as the OpenAPI spec declares); the rest answer Status.
RETURNS_DELETED_OBJECT = {"pods", "services"}


@dataclass(frozen=True)
class Target:
    """The resource, namespace, name and subresource a request path names."""

    res: Resource
    namespace: str | None
    name: str | None
    subresource: str | None

    @classmethod
    def parse(cls, group: str, version: str, segments: list[str]) -> Target:
        """Parse the path after ``/api/v1`` or ``/apis/<group>/<version>``.

        Raises:
            ApiError: 404 for anything not served.
        """
        served = {r.plural: r for r in groups().get(group, []) if r.version == version}
        namespace = None
        if (len(segments) >= 3 and segments[0] == "namespaces"
                and segments[2] in served and served[segments[2]].namespaced):
            namespace, segments = segments[1], segments[2:]
        if not 1 <= len(segments) <= 3 or segments[0] not in served:
            raise NOT_FOUND
        res = served[segments[0]]
        name = segments[1] if len(segments) > 1 else None
        sub = segments[2] if len(segments) > 2 else None
        if res.namespaced and name is not None and namespace is None:
            raise NOT_FOUND  # /api/v1/pods/NAME does not exist, only the list does
        if sub is not None and sub not in res.subresources:
            raise NOT_FOUND
        return cls(res, namespace, name, sub)

    def verb(self, method: str, query: Any) -> str:
        """The authorization verb of a request on this target."""
        if self.subresource == "exec":
            return "create"  # exec needs create, whether the upgrade comes as GET or POST
        if method == "GET":
            if self.name:
                return "get"
            return "watch" if flag(query, "watch") else "list"
        if method == "DELETE":
            return "delete" if self.name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def flag(query: Any, key: str) -> bool:
    """A boolean query parameter (``true``/``1``)."""
    return str(query.get(key, "")).lower() in ("true", "1")


def respond(body: Obj, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.json_response(body, status=status)


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The request body as JSON.

    Raises:
        ApiError: 400 for a missing or malformed body.
    """
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "BadRequest", "the request body is empty")
        return None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {err}") from err


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _list(store: Store, t: Target, request: web.Request) -> web.Response:
    q = request.query
    table = tables.wants_table(request.headers.get("Accept", ""))
    pick = store.list if table else store.select  # the JSON reply is serialised right here
    try:
        items = pick(t.res, t.namespace, q.get("labelSelector"), q.get("fieldSelector"))
    except ValueError as err:
        raise ApiError(400, "BadRequest", str(err)) from err
    rv = store.resource_version
    if table:
        return respond(tables.table(t.res, items, rv, q.get("includeObject", "Metadata")))
    return respond({"kind": f"{t.res.kind}List", "apiVersion": t.res.api_version,
                    "metadata": {"resourceVersion": rv}, "items": items})


def _get(store: Store, t: Target, request: web.Request) -> web.Response:
    obj = store.get(t.res, t.namespace or "", t.name or "")
    if t.subresource == "scale":
        return respond(scale_of(obj))
    if tables.wants_table(request.headers.get("Accept", "")):
        include = request.query.get("includeObject", "Metadata")
        return respond(tables.table(t.res, [obj], obj["metadata"]["resourceVersion"], include))
    return respond(obj)


def scale_of(obj: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale view of a workload."""
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {
        k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in meta},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": tables.label_selector(obj.get("spec", {}).get("selector"))}}


def _check_identity(t: Target, body: Any) -> Obj:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be an object")
    meta = body.setdefault("metadata", {})
    if t.res.namespaced:
        if meta.get("namespace") and meta["namespace"] != t.namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        meta["namespace"] = t.namespace
    if t.name and meta.get("name") and meta["name"] != t.name:
        raise ApiError(400, "BadRequest", f"the name of the object ({meta['name']}) does not "
                       f"match the name on the URL ({t.name})")
    if t.name:
        meta["name"] = t.name
    kind = body.get("kind")
    if kind and t.subresource is None and kind != t.res.kind:
        raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')})"
                       f" does not match the expected API version ({t.res.api_version})")
    return body


async def _create(store: Store, t: Target, request: web.Request) -> web.Response:
    if t.name:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource")
    body = _check_identity(t, await read_json(request))
    if _dry_run(request):
        name = body["metadata"].get("name", "")
        if store.find(t.res, t.namespace or "", name) is not None:
            raise ApiError(409, "AlreadyExists", f'{t.res.plural} "{name}" already exists')
        body.update(apiVersion=t.res.api_version, kind=t.res.kind)
        if t.namespace:
            body["metadata"]["namespace"] = t.namespace
        for admit in store.admission:  # a dry run is admitted (and refused) like the real one
            admit(t.res, copy.deepcopy(body), None)
        return respond(body, 201)
    return respond(store.create(t.res, body, t.namespace), 201)


def _store_update(store: Store, t: Target, obj: Obj, dry_run: bool) -> Obj:
    if t.subresource == "scale":
        replicas = obj.get("spec", {}).get("replicas")
        obj = store.get(t.res, t.namespace or "", t.name or "")
        obj.setdefault("spec", {})["replicas"] = replicas
    if dry_run:
        return obj
    sub = t.subresource if t.subresource == "status" else None
    new = store.replace(t.res, obj, subresource=sub)
    return scale_of(new) if t.subresource == "scale" else new


async def _update(store: Store, t: Target, request: web.Request) -> web.Response:
    if not t.name:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource")
    body = _check_identity(t, await read_json(request))
    if store.find(t.res, t.namespace or "", t.name) is None:
        raise not_found(t.res, t.name)
    return respond(_store_update(store, t, body, _dry_run(request)))


async def _patch(store: Store, t: Target, request: web.Request) -> web.Response:
    if not t.name:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource")
    patch = await read_json(request)
    current = store.get(t.res, t.namespace or "", t.name)
    base = scale_of(current) if t.subresource == "scale" else current
    patched = apply_patch(request.content_type, base, patch)
    # A patch may not move an object: name and namespace come from the URL.
    patched.setdefault("metadata", {}).update(
        {k: base["metadata"][k] for k in ("name", "namespace") if k in base["metadata"]})
    return respond(_store_update(store, t, patched, _dry_run(request)))


async def _delete_options(request: web.Request) -> tuple[bool, str]:
    body = await read_json(request, required=False) or {}
    grace = body.get("gracePeriodSeconds", request.query.get("gracePeriodSeconds"))
    policy = body.get("propagationPolicy") or request.query.get("propagationPolicy")
    return str(grace) != "0", policy or "Background"


def _deleted(t: Target, obj: Obj) -> Obj:
    if t.res.plural in RETURNS_DELETED_OBJECT:
        return obj
    meta = obj["metadata"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": meta["name"], "group": t.res.group, "kind": t.res.plural,
                        "uid": meta["uid"]}}


async def _delete(store: Store, t: Target, request: web.Request) -> web.Response:
    grace, policy = await _delete_options(request)
    if t.name:
        if _dry_run(request):
            return respond(_deleted(t, store.get(t.res, t.namespace or "", t.name)))
        obj = store.delete(t.res, t.namespace or "", t.name, grace=grace, propagation=policy)
        return respond(_deleted(t, obj))
    q = request.query
    victims = store.list(t.res, t.namespace, q.get("labelSelector"), q.get("fieldSelector"))
    if not _dry_run(request):
        for obj in victims:
            meta = obj["metadata"]
            if store.find(t.res, meta.get("namespace", ""), meta["name"]) is not None:
                store.delete(t.res, meta.get("namespace", ""), meta["name"], grace=grace,
                             propagation=policy)
    return respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"group": t.res.group, "kind": t.res.plural}})


def pick_container(pod: Obj, wanted: str | None) -> str:
    """The container a log or exec request means.

    Raises:
        ApiError: 400 when the name is missing for a multi-container pod or unknown.
    """
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    every = names + [c["name"] for c in spec.get("initContainers") or []]
    pod_name = pod["metadata"]["name"]
    if not wanted:
        if len(names) == 1:
            return str(names[0])
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod "
                       f"{pod_name}, choose one of: [{' '.join(names)}]")
    if wanted not in every:  # init containers have logs and may be exec'd into too
        raise ApiError(400, "BadRequest", f"container {wanted} is not valid for pod {pod_name}")
    return wanted


def ensure_running(pod: Obj, container: str) -> None:
    """Refuse exec into a container that is not running, as the kubelet words it.

    Checked before any upgrade so that kubectl's SPDY retry (it retries after any
    failed websocket upgrade) meets the same error.

    Raises:
        ApiError: 400 BadRequest.
    """
    name, status = pod["metadata"]["name"], pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        raise ApiError(400, "BadRequest", "cannot exec into a container in a completed pod; "
                       f"current phase is {phase}")
    every = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    state = next((cs.get("state") or {} for cs in every if cs.get("name") == container), {})
    if "waiting" in state:
        reason = state["waiting"].get("reason") or "ContainerCreating"
        raise ApiError(400, "BadRequest",
                       f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    if "terminated" in state:
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is not '
                       "running")


def _logs(store: Store, runtime: PodRuntime, t: Target, request: web.Request) -> web.Response:
    pod = store.get(t.res, t.namespace or "", t.name or "")
    q = request.query
    container = pick_container(pod, q.get("container"))
    try:
        tail = int(q["tailLines"]) if q.get("tailLines") else None
    except ValueError as err:
        raise ApiError(400, "BadRequest", f"invalid tailLines: {q['tailLines']}") from err
    text = runtime.logs(pod, container, previous=flag(q, "previous"), tail_lines=tail)
    return web.Response(text=text, content_type="text/plain")


async def _exec(store: Store, runtime: PodRuntime, t: Target,
                request: web.Request) -> web.StreamResponse:
    pod = store.get(t.res, t.namespace or "", t.name or "")
    q = request.query
    command = q.getall("command", [])
    if not command:
        raise ApiError(400, "BadRequest", "you must specify at least 1 command")
    container = pick_container(pod, q.get("container"))
    ensure_running(pod, container)
    req = execws.ExecRequest(container, command,
                             stdin=flag(q, "stdin"), stdout=flag(q, "stdout"),
                             stderr=flag(q, "stderr"), tty=flag(q, "tty"))
    return await execws.serve(request, runtime, pod, req)


async def handle(store: Store, runtime: PodRuntime, t: Target,
                 request: web.Request) -> web.StreamResponse:
    """Serve one (already authorized) request on ``t``."""
    method = request.method
    if t.subresource == "exec" and method in ("GET", "POST"):
        return await _exec(store, runtime, t, request)
    if t.subresource == "log" and method == "GET":
        return _logs(store, runtime, t, request)
    if t.subresource == "eviction" and method == "POST":
        body = _check_identity(t, await read_json(request))
        return respond(disruption.evict(store, t.namespace or "", body["metadata"]["name"]),
                       201)
    if t.subresource in ("exec", "log", "eviction"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource")
    if method == "GET" and t.name:
        return _get(store, t, request)
    if method == "GET" and flag(request.query, "watch"):
        req = watch.WatchRequest.from_query(t.res, t.namespace, request.query)
        render = _watch_renderer(t.res, request)
        return await watch.stream(request, store, req, render)
    if method == "GET":
        return _list(store, t, request)
    handlers = {"POST": _create, "PUT": _update, "PATCH": _patch, "DELETE": _delete}
    if method not in handlers:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource")
    return await handlers[method](store, t, request)


def _watch_renderer(res: Resource, request: web.Request) -> Callable[[Obj], Obj]:
    if not tables.wants_table(request.headers.get("Accept", "")):
        return copy.deepcopy
    include = request.query.get("includeObject", "Metadata")
    return lambda obj: tables.table(res, [obj], obj["metadata"]["resourceVersion"], include)
