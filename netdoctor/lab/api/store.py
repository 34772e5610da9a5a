"""An in-memory object store with Kubernetes semantics.

resourceVersion, uid, generation, creationTimestamp, optimistic concurrency,
watch history, graceful pod deletion and ownerReference cascading delete. All
mutations happen on the lab's event loop thread, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from netdoctor.lab.api.resources import Resource, resource
from netdoctor.lab.api.selectors import field_matcher, label_matcher

Obj = dict[str, Any]
Event = tuple[str, Resource, Obj]  # ("ADDED"|"MODIFIED"|"DELETED", resource, object)

PODS = resource("", "pods")
NAMESPACES = resource("", "namespaces")
WORKLOAD_KINDS = {"Deployment", "ReplicaSet", "DaemonSet"}


def now() -> str:
    """RFC 3339 timestamp with second precision, as the API server writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error the API server returns as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        """The ``Status`` body for this error."""
        body: Obj = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(res: Resource, name: str) -> ApiError:
    """The 404 a client sees for a missing object."""
    group = res.group or ""
    what = f"{res.plural}.{group}" if group else res.plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found',
                    {"name": name, "group": group, "kind": res.plural})


class Store:
    """Objects by resource, namespace and name, with a bounded watch history."""

    def __init__(self, history: int = 50_000) -> None:
        self._objects: dict[Resource, dict[tuple[str, str], Obj]] = {}
        # Each bucket's keys in order, kept until a key comes or goes: the controllers and
        # the kubelet read whole buckets after every burst of events, and sorting five
        # hundred pods each time was most of what they cost.
        self._order: dict[Resource, list[tuple[str, str]]] = {}
        # Who owns what (owner uid -> dependents) and how many objects each namespace holds:
        # the controllers, a cascading delete and the end of a namespace deletion looked
        # these up by scanning every object, once per object at 100 nodes.
        self._children: dict[str, set[tuple[Resource, str, str]]] = {}
        self._in_namespace: Counter[str] = Counter()
        self._rv = 1
        self._history: deque[tuple[int, Event]] = deque(maxlen=history)
        self._subscribers: dict[asyncio.Queue[Event], frozenset[Resource] | None] = {}
        self.hooks: list[Callable[[Event], None]] = []
        # Admission: called with (resource, new object, old object or None) before a
        # create or replace is stored; fills defaults the way the API server does.
        self.admission: list[Callable[[Resource, Obj, Obj | None], None]] = []

    # -- reading -------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        """The newest resourceVersion handed out."""
        return str(self._rv)

    def _bucket(self, res: Resource) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(res, {})

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        """A copy of one object.

        Raises:
            ApiError: 404 when absent.
        """
        obj = self._bucket(res).get((namespace if res.namespaced else "", name))
        if obj is None:
            raise not_found(res, name)
        return copy.deepcopy(obj)

    def find(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """Like :meth:`get`, but ``None`` when absent."""
        obj = self._bucket(res).get((namespace if res.namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def peek(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """The stored object itself (not a copy), ``None`` when absent: for in-process
        readers that do not change it."""
        return self._bucket(res).get((namespace if res.namespaced else "", name))

    def items(self, res: Resource, namespace: str | None = None) -> Iterator[Obj]:
        """The stored objects themselves (not copies), by namespace and name: for in-process
        readers only."""
        bucket = self._bucket(res)
        order = self._order.get(res)
        if order is None:
            order = self._order[res] = sorted(bucket)
        for key in order:
            obj = bucket.get(key)  # an object removed while the caller iterates is skipped
            if obj is not None and (namespace is None or key[0] == namespace):
                yield obj

    def children(self, res: Resource, namespace: str, owner_uid: str) -> list[Obj]:
        """The stored objects (not copies) of ``res`` in ``namespace`` whose
        ownerReferences name ``owner_uid``, by name."""
        bucket = self._bucket(res)
        keys = sorted((ns, name) for r, ns, name in self._children.get(owner_uid, ())
                      if r == res and ns == namespace)
        return [bucket[k] for k in keys if k in bucket]

    def _index(self, res: Resource, key: tuple[str, str], obj: Obj, add: bool) -> None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            uid = ref.get("uid")
            if not uid:
                continue
            if add:
                self._children.setdefault(uid, set()).add((res, *key))
            elif uid in self._children:
                self._children[uid].discard((res, *key))
                if not self._children[uid]:
                    del self._children[uid]

    def select(self, res: Resource, namespace: str | None = None,
               label_selector: str | None = None, field_selector: str | None = None
               ) -> list[Obj]:
        """The matching objects themselves, sorted by namespace and name: read them before
        the next ``await`` and never change them (a LIST serialises them at once; a copy of
        every object of a large list cost the whole loop more than serialising it)."""
        labels, fields = label_matcher(label_selector), field_matcher(field_selector)
        return [o for o in self.items(res, namespace)
                if labels(o["metadata"].get("labels") or {}) and fields(o)]

    def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        """Copies of matching objects, sorted by namespace and name."""
        return [copy.deepcopy(o) for o in self.select(res, namespace, label_selector,
                                                      field_selector)]

    # -- writing -------------------------------------------------------------------------
    def _emit(self, etype: str, res: Resource, obj: Obj) -> None:
        event: Event = (etype, res, copy.deepcopy(obj))
        self._history.append((self._rv, event))
        for q, only in list(self._subscribers.items()):
            if only is None or res in only:
                q.put_nowait(event)
        for hook in list(self.hooks):
            hook(event)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        """Store a new object, filling the server-set metadata.

        Raises:
            ApiError: 409 AlreadyExists, 404 for a missing namespace, 422 for a missing name.
        """
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            ns = namespace or meta.get("namespace") or "default"
            if self.find(NAMESPACES, "", ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})
            ns_obj = self._bucket(NAMESPACES)[("", ns)]
            if ns_obj["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f"unable to create new content in namespace {ns} "
                               "because it is being terminated")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(422, "Invalid",
                               f"{res.kind} is invalid: metadata.name: Required value")
            meta["name"] = prefix + uuid.uuid4().hex[:5]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._bucket(res):
            raise ApiError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": res.group, "kind": res.plural})
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["resourceVersion"] = self._next_rv()
        meta.pop("deletionTimestamp", None)
        if res.kind in WORKLOAD_KINDS:
            meta["generation"] = 1
        for admit in self.admission:
            admit(res, obj, None)
        self._bucket(res)[key] = obj
        self._order.pop(res, None)
        self._index(res, key, obj, add=True)
        if res.namespaced:
            self._in_namespace[key[0]] += 1
        self._emit("ADDED", res, obj)
        return copy.deepcopy(obj)

    def replace(self, res: Resource, obj: Obj, *, subresource: str | None = None,
                check_version: bool = True) -> Obj:
        """Replace an object (PUT). ``subresource="status"`` changes only the status;
        ``subresource="all"`` (in-process writers) changes spec and status at once.

        Raises:
            ApiError: 404 when absent, 409 Conflict on a stale resourceVersion.
        """
        new = self._store_replacement(res, obj, subresource, check_version, owned=False)
        return copy.deepcopy(new)

    def _store_replacement(self, res: Resource, obj: Obj, subresource: str | None,
                           check_version: bool, *, owned: bool) -> Obj:
        """:meth:`replace` without copying its answer; the stored object is returned (never
        change it). ``owned``: ``obj`` is the caller's own copy, stored without another."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", "") if res.namespaced else "", meta.get("name", ""))
        old = self._bucket(res).get(key)
        if old is None:
            raise not_found(res, key[1])
        rv = meta.get("resourceVersion")
        if check_version and rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} '
                           f'"{key[1]}": the object has been modified; please apply your changes '
                           "to the latest version and try again")
        if subresource == "status":
            status = obj.get("status") or {}
            if owned:  # a copy of the stored object: only what ``change`` wrote outside
                new = obj  # the status is put back
                for field in set(new) - set(old) - {"status"}:
                    del new[field]
                for field, value in old.items():
                    if field != "status" and new.get(field) != value:
                        new[field] = copy.deepcopy(value)
            else:
                new = {f: copy.deepcopy(v) for f, v in old.items() if f != "status"}
                status = copy.deepcopy(status)
            new["status"] = status
        else:
            keep_status = "status" in res.subresources and subresource != "all"
            status = copy.deepcopy(old.get("status")) if keep_status else None
            new = obj if owned else copy.deepcopy(obj)
            new["apiVersion"], new["kind"] = res.api_version, res.kind
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if field in old["metadata"]:
                    new["metadata"][field] = old["metadata"][field]
            new["metadata"]["namespace"] = old["metadata"].get("namespace")
            if not res.namespaced:
                new["metadata"].pop("namespace", None)
            if keep_status and status is not None:
                new["status"] = status
            if res.kind in WORKLOAD_KINDS and new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        for admit in self.admission:
            admit(res, new, old)
        if new == old:
            return old
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._bucket(res)[key] = new
        self._index(res, key, old, add=False)
        self._index(res, key, new, add=True)
        self._emit("MODIFIED", res, new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and res is not PODS:
            self.remove(res, key[0], key[1])
        return new

    def mutate(self, res: Resource, namespace: str, name: str, change: Callable[[Obj], None],
               *, subresource: str | None = None) -> bool:
        """Apply ``change`` to a copy of an object and store it; False when absent.

        The in-process writers (kubelets' status, node heartbeats, controllers) call this
        thousands of times a run: the copy ``change`` wrote is stored without a second
        copy of the whole object, a top-level field ``change`` assigned is stored as a copy
        of its own (the writer may keep the value it assigned), and nothing is copied for
        an answer nobody reads."""
        obj = self.find(res, namespace, name)
        if obj is None:
            return False
        before = dict(obj)  # holds the copy's own fields, so that each keeps its identity
        change(obj)
        for field, value in obj.items():  # a field ``change`` put in may be the writer's
            if value is not before.get(field):  # own (a kubelet's status): stored as a copy
                obj[field] = copy.deepcopy(value)
        self._store_replacement(res, obj, subresource, False, owned=True)
        return True

    def delete(self, res: Resource, namespace: str, name: str, *, grace: bool = True,
               propagation: str = "Background") -> Obj:
        """Delete an object the way the API server does.

        Pods bound to a node with ``grace`` are only marked (deletionTimestamp): the
        kubelet stops them and then calls :meth:`remove`. Dependents named by
        ownerReferences are deleted too unless ``propagation`` is ``Orphan``.

        Raises:
            ApiError: 404 when absent.
        """
        key = (namespace if res.namespaced else "", name)
        obj = self._bucket(res).get(key)
        if obj is None:
            raise not_found(res, name)
        if res is NAMESPACES:
            return self._delete_namespace(obj)
        if res is PODS and grace and obj.get("spec", {}).get("nodeName"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 30
                obj["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("MODIFIED", res, obj)
            return copy.deepcopy(obj)
        removed = self.remove(res, key[0], name, cascade=False)
        if propagation != "Orphan":
            self._cascade(removed["metadata"]["uid"], grace)
        return removed

    def remove(self, res: Resource, namespace: str, name: str, *, cascade: bool = True) -> Obj:
        """Drop an object now (the end of a graceful deletion).

        Args:
            res: Its resource type.
            namespace: Its namespace ("" for cluster-scoped objects).
            name: Its name.
            cascade: Also delete the objects it owns (:meth:`delete` passes ``False``
                to apply its own propagation policy).
        """
        key = (namespace if res.namespaced else "", name)
        obj = self._bucket(res).pop(key, None)
        if obj is None:
            raise not_found(res, name)
        self._order.pop(res, None)
        self._index(res, key, obj, add=False)
        if res.namespaced:
            self._in_namespace[key[0]] -= 1
            if not self._in_namespace[key[0]]:
                del self._in_namespace[key[0]]
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", res, obj)
        if cascade:
            self._cascade(obj["metadata"]["uid"], grace=True)
        if res.namespaced:
            self._finish_namespace(key[0])
        return copy.deepcopy(obj)

    def _cascade(self, owner_uid: str, grace: bool) -> None:
        dependents = sorted(self._children.get(owner_uid, ()),
                            key=lambda d: (d[0].group, d[0].plural, d[1], d[2]))
        for res, ns, name in dependents:
            if (ns, name) in self._bucket(res):  # not already gone with another dependent
                self.delete(res, ns, name, grace=grace)

    def _delete_namespace(self, ns_obj: Obj) -> Obj:
        ns = ns_obj["metadata"]["name"]
        if not ns_obj["metadata"].get("deletionTimestamp"):
            ns_obj["metadata"]["deletionTimestamp"] = now()
            ns_obj.setdefault("status", {})["phase"] = "Terminating"
            ns_obj["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("MODIFIED", NAMESPACES, ns_obj)
        for res, bucket in list(self._objects.items()):
            if res.namespaced:
                for (ons, name) in list(bucket):
                    if ons == ns and (ons, name) in bucket:
                        self.delete(res, ons, name)
        self._finish_namespace(ns)
        return copy.deepcopy(ns_obj)

    def _finish_namespace(self, ns: str) -> None:
        ns_obj = self._bucket(NAMESPACES).get(("", ns))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if self._in_namespace.get(ns):
            return
        self.remove(NAMESPACES, "", ns)

    # -- watching ------------------------------------------------------------------------
    def subscribe(self, *resources: Resource) -> asyncio.Queue[Event]:
        """A queue that receives every event from now on, only those of ``resources`` when
        given; pass it to :meth:`unsubscribe`.

        Each event wakes every subscriber it is given to: a 100-node lab has two hundred
        components following Nodes or Services, and handing each of them every pod status
        and Event woke them all for nothing, on the one event loop, for every change.
        """
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers[q] = frozenset(resources) or None
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        """Stop delivering events to ``q``."""
        self._subscribers.pop(q, None)

    def history_since(self, resource_version: int) -> builtins.list[Event] | None:
        """Events newer than ``resource_version``; ``None`` when it is older than the history."""
        full = len(self._history) == self._history.maxlen
        if full and self._history and resource_version < self._history[0][0] - 1:
            return None
        return [ev for rv, ev in self._history if rv > resource_version]
