"""The controllers of the lab's control plane.

Deployment -> ReplicaSet -> Pods, DaemonSet -> one pod per eligible node, and
Endpoints/EndpointSlices from ready pods. One level-triggered reconcile pass runs
after every burst of store events; writes that change nothing emit no event, so
the loop settles.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
from typing import Any

from netdoctor.lab.api.disruption import PDBS, sync_budgets
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.selectors import match_labels
from netdoctor.lab.api.store import ApiError, Obj, Store, now
from netdoctor.lab.jobs import JOBS, reconcile_jobs
from netdoctor.lab.scheduling import daemon_spec, fits

log = logging.getLogger("netdoctor.lab.controllers")
MANAGED_BY = "endpointslice-controller.k8s.io"
PODS = resource("", "pods")
NODES = resource("", "nodes")
SERVICES = resource("", "services")
ENDPOINTS = resource("", "endpoints")
SLICES = resource("discovery.k8s.io", "endpointslices")
DEPLOYMENTS = resource("apps", "deployments")
REPLICASETS = resource("apps", "replicasets")
DAEMONSETS = resource("apps", "daemonsets")
# What the controllers read: a pass after an Event or a Lease changed would find nothing new.
WATCHED = (DEPLOYMENTS, REPLICASETS, DAEMONSETS, PODS, NODES, SERVICES, ENDPOINTS, SLICES, PDBS,
           JOBS)


def template_hash(template: Obj) -> str:
    """A stable short hash of a pod template (``pod-template-hash``)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def owner_ref(owner: Obj) -> Obj:
    """A controller ownerReference pointing at ``owner``."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(store: Store, res: Any, owner: Obj) -> list[Obj]:
    """Objects (not copies) controlled by ``owner`` in its namespace."""
    return store.children(res, owner["metadata"]["namespace"], owner["metadata"]["uid"])


def pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True and it is not being deleted."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def _alive(pods: list[Obj]) -> list[Obj]:
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
    ]


def _pod_from_template(owner: Obj, template: Obj, extra_labels: dict[str, str]) -> Obj:
    meta = copy.deepcopy(template.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), **extra_labels}
    meta["generateName"] = owner["metadata"]["name"] + "-"
    meta["namespace"] = owner["metadata"]["namespace"]
    meta["ownerReferences"] = [owner_ref(owner)]
    meta.pop("name", None)
    return {"metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def _set_status(store: Store, res: Any, obj: Obj, status: Obj) -> None:
    merged = {**(obj.get("status") or {}), **status}
    merged = {k: v for k, v in merged.items() if v not in (None, 0) or k in _KEEP_ZERO}
    if merged != obj.get("status"):
        store.mutate(
            res,
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            lambda o: o.__setitem__("status", merged),
            subresource="status",
        )


_KEEP_ZERO = {
    "replicas",
    "currentNumberScheduled",
    "desiredNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "observedGeneration",
}


class ControllerManager:
    """Runs every controller against one store until cancelled."""

    def __init__(self, store: Store, debounce: float = 0.02) -> None:
        self.store, self.debounce = store, debounce

    async def run(self) -> None:
        """Reconcile after every burst of events, forever."""
        queue = self.store.subscribe(*WATCHED)
        try:
            while True:
                self.reconcile()
                await queue.get()
                await asyncio.sleep(self.debounce)
                while not queue.empty():
                    queue.get_nowait()
        finally:
            self.store.unsubscribe(queue)

    def reconcile(self) -> None:
        """One pass of every controller."""
        for step in (self._deployments, self._replicasets, self._daemonsets, self._endpoints,
                     self._budgets, self._jobs):
            try:
                step()
            except ApiError:
                # A concurrent change (e.g. a namespace being deleted); the next pass retries.
                continue
            except Exception:  # a bug in one controller must not stop the others
                log.exception("controller %s failed; retrying on the next event", step.__name__)

    def _budgets(self) -> None:
        sync_budgets(self.store)

    def _jobs(self) -> None:
        reconcile_jobs(self.store)

    # -- Deployments ---------------------------------------------------------------------
    def _deployments(self) -> None:
        for dep in list(self.store.items(DEPLOYMENTS)):
            self._deployment(dep)

    def _deployment(self, dep: Obj) -> None:
        spec, ns = dep["spec"], dep["metadata"]["namespace"]
        h = template_hash(spec["template"])
        sets = owned(self.store, REPLICASETS, dep)
        new = next(
            (rs for rs in sets if rs["metadata"]["labels"].get("pod-template-hash") == h), None
        )
        revisions = [
            int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0"))
            for rs in sets
        ]
        if new is None:
            template = copy.deepcopy(spec["template"])
            template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            new = self.store.create(
                REPLICASETS,
                {
                    "metadata": {
                        "name": f"{dep['metadata']['name']}-{h}",
                        "namespace": ns,
                        "labels": template["metadata"]["labels"],
                        "annotations": {
                            "deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1),
                            "deployment.kubernetes.io/desired-replicas": str(spec["replicas"]),
                        },
                        "ownerReferences": [owner_ref(dep)],
                    },
                    "spec": {
                        "replicas": spec["replicas"],
                        "selector": selector,
                        "template": template,
                    },
                },
            )
        elif new["spec"]["replicas"] != spec["replicas"]:
            self.store.mutate(
                REPLICASETS,
                ns,
                new["metadata"]["name"],
                lambda o: o["spec"].__setitem__("replicas", spec["replicas"]),
            )
        new_ready = new.get("status", {}).get("readyReplicas", 0) >= spec["replicas"]
        for rs in sets:
            if (
                rs["metadata"]["uid"] != new["metadata"]["uid"]
                and rs["spec"]["replicas"]
                and new_ready
            ):
                self.store.mutate(
                    REPLICASETS,
                    ns,
                    rs["metadata"]["name"],
                    lambda o: o["spec"].__setitem__("replicas", 0),
                )
        self._deployment_status(dep, sets, new)

    def _deployment_status(self, dep: Obj, sets: list[Obj], new: Obj) -> None:
        def total(key: str) -> int:
            return sum(rs.get("status", {}).get(key, 0) for rs in sets)

        desired = dep["spec"]["replicas"]
        available = total("availableReplicas")
        updated = new.get("status", {}).get("replicas", 0)
        old_conds = {c["type"]: c for c in dep.get("status", {}).get("conditions") or []}

        def cond(ctype: str, ok: bool, reason: str, message: str) -> Obj:
            status = "True" if ok else "False"
            prev: Obj | None = old_conds.get(ctype)
            if prev and prev["status"] == status and prev["reason"] == reason:
                return prev
            stamp = now()
            return {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            }

        name = new["metadata"]["name"]
        new_done = new.get("status", {}).get("availableReplicas", 0) >= desired
        conditions = [
            cond(
                "Available",
                available >= desired,
                "MinimumReplicasAvailable"
                if available >= desired
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= desired
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if new_done else "ReplicaSetUpdated",
                f'ReplicaSet "{name}" has successfully progressed.'
                if new_done
                else f'ReplicaSet "{name}" is progressing.',
            ),
        ]
        _set_status(
            self.store,
            DEPLOYMENTS,
            dep,
            {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": total("replicas"),
                "updatedReplicas": updated,
                "readyReplicas": total("readyReplicas"),
                "availableReplicas": available,
                "unavailableReplicas": max(desired - available, 0),
                "conditions": conditions,
            },
        )

    # -- ReplicaSets ---------------------------------------------------------------------
    def _replicasets(self) -> None:
        for rs in list(self.store.items(REPLICASETS)):
            pods = _alive(owned(self.store, PODS, rs))
            want = rs["spec"]["replicas"]
            ns = rs["metadata"]["namespace"]
            for _ in range(want - len(pods)):
                self.store.create(PODS, _pod_from_template(rs, rs["spec"]["template"], {}))
            if len(pods) > want:
                # Unready and unscheduled pods go first, then the newest.
                pods.sort(
                    key=lambda p: (
                        pod_ready(p),
                        bool(p["spec"].get("nodeName")),
                        p["metadata"]["creationTimestamp"],
                    ),
                    reverse=False,
                )
                for p in pods[: len(pods) - want]:
                    self.store.delete(PODS, ns, p["metadata"]["name"])
            pods = _alive(owned(self.store, PODS, rs))
            ready = sum(pod_ready(p) for p in pods)
            _set_status(
                self.store,
                REPLICASETS,
                rs,
                {
                    "replicas": len(pods),
                    "fullyLabeledReplicas": len(pods),
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": rs["metadata"]["generation"],
                },
            )

    # -- DaemonSets ----------------------------------------------------------------------
    def _daemonsets(self) -> None:
        nodes = list(self.store.items(NODES))
        for ds in list(self.store.items(DAEMONSETS)):
            self._daemonset(ds, nodes)

    def _daemonset(self, ds: Obj, nodes: list[Obj]) -> None:
        ns, tmpl = ds["metadata"]["namespace"], ds["spec"]["template"]
        h = template_hash(tmpl)
        spec = daemon_spec(tmpl["spec"])
        eligible = {n["metadata"]["name"] for n in nodes if fits(spec, n)}
        pods = _alive(owned(self.store, PODS, ds))
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            by_node.setdefault(self._daemon_target(p), []).append(p)
        for node in sorted(eligible - set(by_node)):
            pod = _pod_from_template(
                ds,
                tmpl,
                {
                    "controller-revision-hash": h,
                    "pod-template-generation": str(ds["metadata"]["generation"]),
                },
            )
            pod["spec"]["tolerations"] = spec["tolerations"]
            pod["spec"]["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [node]}
                                ]
                            }
                        ]
                    }
                }
            }
            self.store.create(PODS, pod)
        misscheduled = [p for n, ps in by_node.items() if n not in eligible for p in ps]
        outdated = [
            p
            for p in pods
            if p["metadata"]["labels"].get("controller-revision-hash") != h
            and p not in misscheduled
        ]
        all_ready = all(pod_ready(p) for p in pods)
        # Roll like maxUnavailable=1: replace unready outdated pods at once, ready ones singly.
        doomed = misscheduled + [p for p in outdated if not pod_ready(p)]
        if all_ready and outdated:
            doomed.append(outdated[0])
        for p in doomed:
            self.store.delete(PODS, ns, p["metadata"]["name"])
        pods = [
            p for p in _alive(owned(self.store, PODS, ds)) if self._daemon_target(p) in eligible
        ]
        ready = sum(pod_ready(p) for p in pods)
        _set_status(
            self.store,
            DAEMONSETS,
            ds,
            {
                "desiredNumberScheduled": len(eligible),
                "currentNumberScheduled": len({self._daemon_target(p) for p in pods}),
                "numberReady": ready,
                "numberAvailable": ready,
                "numberUnavailable": max(len(eligible) - ready, 0),
                "updatedNumberScheduled": sum(
                    p["metadata"]["labels"].get("controller-revision-hash") == h for p in pods
                ),
                "numberMisscheduled": len(misscheduled),
                "observedGeneration": ds["metadata"]["generation"],
            },
        )

    @staticmethod
    def _daemon_target(pod: Obj) -> str:
        if pod["spec"].get("nodeName"):
            return str(pod["spec"]["nodeName"])
        terms = pod["spec"].get("affinity", {}).get("nodeAffinity", {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution", {}
        ).get("nodeSelectorTerms") or [{}]
        for f in terms[0].get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("values"):
                return str(f["values"][0])
        return ""

    # -- Endpoints -----------------------------------------------------------------------
    def _endpoints(self) -> None:
        services = list(self.store.items(SERVICES))
        names = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services}
        for svc in services:
            if svc["spec"].get("selector"):
                self._service_endpoints(svc)
        for ep in list(self.store.items(ENDPOINTS)):
            key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
            managed = "endpoints.kubernetes.io/last-change-trigger-time" in (
                ep["metadata"].get("annotations") or {}
            )
            if key not in names and managed:
                self.store.delete(ENDPOINTS, *key)

    def _service_endpoints(self, svc: Obj) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        selector = {"matchLabels": svc["spec"]["selector"]}
        pods = [
            p
            for p in self.store.items(PODS, ns)
            if match_labels(selector, p["metadata"].get("labels") or {})
            and p.get("status", {}).get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]
        ports: list[Obj] = []
        addresses: list[tuple[Obj, bool]] = []
        for p in pods:
            addresses.append((p, pod_ready(p)))
        for sp in svc["spec"].get("ports") or []:
            target = sp.get("targetPort", sp["port"])
            number = target if isinstance(target, int) else _named_port(pods, str(target))
            if number is None:
                continue
            port: Obj = {"port": number, "protocol": sp.get("protocol", "TCP")}
            if sp.get("name"):
                port["name"] = sp["name"]
            ports.append(port)
        self._write_endpoints(svc, addresses, ports)
        self._write_slice(svc, addresses, ports)
        _ = name

    def _write_endpoints(
        self, svc: Obj, addresses: list[tuple[Obj, bool]], ports: list[Obj]
    ) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]

        def addr(p: Obj) -> Obj:
            return {
                "ip": p["status"]["podIP"],
                "nodeName": p["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }

        subset: Obj = {}
        ready = [addr(p) for p, ok in addresses if ok]
        unready = [addr(p) for p, ok in addresses if not ok]
        if ready:
            subset["addresses"] = ready
        if unready:
            subset["notReadyAddresses"] = unready
        subsets = [{**subset, "ports": ports}] if subset and ports else []
        existing = self.store.find(ENDPOINTS, ns, name)
        labels = dict(svc["metadata"].get("labels") or {})
        if existing is None:
            self.store.create(
                ENDPOINTS,
                {
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now()},
                    },
                    "subsets": subsets,
                },
            )
        elif (existing.get("subsets") or []) != subsets:

            def change(o: Obj) -> None:
                o["subsets"] = subsets
                o["metadata"].setdefault("annotations", {})[
                    "endpoints.kubernetes.io/last-change-trigger-time"
                ] = now()

            self.store.mutate(ENDPOINTS, ns, name, change)

    def _write_slice(self, svc: Obj, addresses: list[tuple[Obj, bool]], ports: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        slice_name = f"{name}-{svc['metadata']['uid'][:5]}"
        endpoints = [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": ok, "serving": ok, "terminating": False},
                "nodeName": p["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }
            for p, ok in addresses
        ]
        body: Obj = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
        existing = self.store.find(SLICES, ns, slice_name)
        if existing is None:
            self.store.create(
                SLICES,
                {
                    "metadata": {
                        "name": slice_name,
                        "namespace": ns,
                        "ownerReferences": [owner_ref(svc)],
                        "labels": {
                            "kubernetes.io/service-name": name,
                            "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                        },
                    },
                    **body,
                },
            )
        elif any(existing.get(k) != v for k, v in body.items()):
            self.store.mutate(SLICES, ns, slice_name, lambda o: o.update(copy.deepcopy(body)))


def _named_port(pods: list[Obj], name: str) -> int | None:
    for p in pods:
        for c in p["spec"].get("containers") or []:
            for port in c.get("ports") or []:
                if port.get("name") == name:
                    return int(port["containerPort"])
    return None
