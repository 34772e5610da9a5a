"""Defaulting and allocation done by the API server on create and update.

Clients (notably the strict models of the official ``kubernetes`` client) expect
objects as a real API server returns them, so the lab fills the same defaults:
pod spec fields, probe timings, Service ClusterIP/NodePort allocation, namespace
phase.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netdoctor.lab.api.resources import Resource
from netdoctor.lab.api.store import ApiError, Obj, Store

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
# Addresses kept for the well-known Services (kubernetes, kube-dns) and never handed out.
RESERVED_IPS = {"10.96.0.1", "10.96.0.10"}


def _probe(probe: Obj | None) -> None:
    if not probe:
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _container(c: Obj) -> None:
    if not c.get("name") or not c.get("image"):
        raise ApiError(
            422, "Invalid", "Pod is invalid: spec.containers: name and image are required"
        )
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c["image"]
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    c.setdefault(
        "imagePullPolicy", "Always" if not tagged or image.endswith(":latest") else "IfNotPresent"
    )
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        _probe(c.get(kind))


def pod_spec(spec: Obj) -> None:
    """Fill a pod spec (also used for workload templates)."""
    containers = spec.get("containers") or []
    if not containers:
        raise ApiError(422, "Invalid", "Pod is invalid: spec.containers: Required value")
    for c in containers + (spec.get("initContainers") or []):
        _container(c)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(
            t.get("key") == key or (t.get("operator") == "Exists" and not t.get("key"))
            for t in tolerations
        ):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )


class Defaulter:
    """Admission for a :class:`Store`: ``store.admission.append(Defaulter(store))``."""

    def __init__(self, store: Store, service_cidr: str = str(SERVICE_CIDR),
                 reserved: tuple[str, ...] = tuple(RESERVED_IPS)) -> None:
        self.store = store
        self.service_cidr = ipaddress.ip_network(service_cidr)
        self.reserved = set(reserved)

    def __call__(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Fill defaults on ``obj`` (``old`` is the stored version on update)."""
        handler = getattr(self, f"_{res.kind.lower()}", None)
        if handler is not None:
            handler(obj, old)

    def _namespace(self, obj: Obj, old: Obj | None) -> None:
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")

    def _lease(self, obj: Obj, old: Obj | None) -> None:
        # As kube-apiserver validates coordination.k8s.io/v1 LeaseSpec: both optional,
        # a duration must be positive and the transition count not negative.
        spec = obj.setdefault("spec", {})
        for field, least in (("leaseDurationSeconds", 1), ("leaseTransitions", 0)):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < least):
                must = "greater than 0" if least else "greater than or equal to 0"
                raise ApiError(422, "Invalid", f'Lease.coordination.k8s.io "'
                               f'{obj["metadata"].get("name", "")}" is invalid: spec.{field}: '
                               f"Invalid value: {value!r}: must be {must}")

    def _pod(self, obj: Obj, old: Obj | None) -> None:
        if old is None:
            pod_spec(obj.setdefault("spec", {}))
            obj.setdefault("status", {}).setdefault("phase", "Pending")
            obj["status"].setdefault("qosClass", "BestEffort")

    def _template(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if "selector" not in spec:
            raise ApiError(
                422, "Invalid", f"{obj['kind']} is invalid: spec.selector: Required value"
            )
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        pod_spec(template.setdefault("spec", {}))
        spec.setdefault("revisionHistoryLimit", 10)

    def _deployment(self, obj: Obj, old: Obj | None) -> None:
        self._template(obj)
        spec = obj["spec"]
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        obj.setdefault("status", {})

    def _replicaset(self, obj: Obj, old: Obj | None) -> None:
        self._template(obj)
        obj["spec"].setdefault("replicas", 1)
        obj.setdefault("status", {}).setdefault("replicas", 0)

    def _daemonset(self, obj: Obj, old: Obj | None) -> None:
        self._template(obj)
        obj["spec"].setdefault(
            "updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        )
        status = obj.setdefault("status", {})
        for key in (
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberMisscheduled",
            "numberReady",
        ):
            status.setdefault(key, 0)

    def _service(self, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if old is not None:
            for key in ("clusterIP", "clusterIPs"):
                if old.get("spec", {}).get(key) and not spec.get(key):
                    spec[key] = old["spec"][key]
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = spec.get("clusterIP") or self._allocate_ip()
            spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        old_ports = {p.get("port"): p for p in (old or {}).get("spec", {}).get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                kept = old_ports.get(port["port"], {}).get("nodePort")
                port["nodePort"] = kept or self._allocate_node_port()
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def _used(self, path: str) -> set[Any]:
        from netdoctor.lab.api.resources import resource

        out: set[Any] = set()
        for svc in self.store.items(resource("", "services")):
            spec = svc.get("spec", {})
            if path == "clusterIP":
                out.add(spec.get("clusterIP"))
            else:
                out.update(p.get("nodePort") for p in spec.get("ports") or [])
        return out

    def _allocate_ip(self) -> str:
        used = self._used("clusterIP") | self.reserved
        for host in self.service_cidr.hosts():
            if str(host) not in used and host.packed[-1] != 0:
                return str(host)
        raise ApiError(500, "InternalError", "range is full")

    def _allocate_node_port(self) -> int:
        used = self._used("nodePort")
        for port in NODE_PORTS:
            if port not in used:
                return port
        raise ApiError(422, "Invalid", "range of node ports is full")
