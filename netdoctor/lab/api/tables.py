"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns kubectl shows.

kubectl asks for a Table (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``)
and prints whatever columns come back; priority 1 columns appear with ``-o wide``.
The cell values follow the API server's printers, e.g. the pod Status column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from netdoctor.lab.api.resources import Resource

Obj = dict[str, Any]
Row = list[Any]

NONE = "<none>"


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for a meta.k8s.io Table."""
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """Age as kubectl prints it (``45s``, ``5m3s``, ``3h``, ``12d``...)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // (24 * 365), (hours // 24) % 365
    return f"{years}y{days}d" if days and years < 8 else f"{years}y"


def since(timestamp: str | None) -> str:
    """Time elapsed since an RFC 3339 timestamp, ``<unknown>`` without one."""
    if not timestamp:
        return "<unknown>"
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return human_duration((datetime.now(UTC) - then).total_seconds())


def age(obj: Obj) -> str:
    """The Age cell."""
    return since(obj["metadata"].get("creationTimestamp"))


def _labels(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or NONE


def label_selector(selector: Obj | None) -> str:
    """A structured LabelSelector in string form."""
    parts = [f"{k}={v}" for k, v in sorted((selector or {}).get("matchLabels", {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        op, key = expr["operator"], expr["key"]
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(sorted(expr.get('values') or []))})")
        else:
            parts.append(key if op == "Exists" else f"!{key}")
    return ",".join(parts) or NONE


def _template_columns(obj: Obj) -> list[str]:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            label_selector(obj.get("spec", {}).get("selector"))]


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


NAME = _col("Name", fmt="name")
AGE = _col("Age")
TEMPLATE = [_col("Containers", priority=1), _col("Images", priority=1),
            _col("Selector", priority=1)]


def _container_reason(status: Obj, reason: str) -> tuple[str, bool]:
    state = status.get("state") or {}
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting and waiting.get("reason"):
        return waiting["reason"], False
    if terminated and terminated.get("reason"):
        return terminated["reason"], False
    if terminated:
        signal = terminated.get("signal")
        return (f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}",
                False)
    return reason, bool(status.get("ready") and state.get("running"))


def _init_reason(pod: Obj) -> str | None:
    """The Init:... status while init containers have not all succeeded."""
    statuses = pod.get("status", {}).get("initContainerStatuses") or []
    total = len(pod.get("spec", {}).get("initContainers") or [])
    for i, cs in enumerate(statuses):
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            if terminated.get("reason"):
                return f"Init:{terminated['reason']}"
            signal = terminated.get("signal")
            return f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{terminated['exitCode']}"
        if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}"
        return f"Init:{i}/{total}"
    return None


def pod_status(pod: Obj) -> tuple[str, int, int, str | None]:
    """Status cell, ready containers, restarts and last restart time, as kubectl computes them."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    ready = restarts = 0
    last: str | None = None
    init = _init_reason(pod)
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if init is not None and conditions.get("Initialized") != "True":
        reason = init
    else:
        running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if finished and (last is None or finished > last):
                last = finished
            reason, is_ready = _container_reason(cs, reason)
            ready += is_ready
            running = running or is_ready
        if reason == "Completed" and running:
            reason = "Running" if conditions.get("Ready") == "True" else "NotReady"
    if pod["metadata"].get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, restarts, last


def _pod_row(pod: Obj) -> Row:
    reason, ready, restarts, last = pod_status(pod)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    restart_cell = f"{restarts} ({since(last)} ago)" if last and restarts else str(restarts)
    gates = spec.get("readinessGates") or []
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    gate_cell = (f"{sum(conds.get(g.get('conditionType')) == 'True' for g in gates)}/{len(gates)}"
                 if gates else NONE)
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason,
            restart_cell, age(pod), status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, gate_cell]


def _node_row(node: Obj) -> Row:
    status = node.get("status") or {}
    ready = {c.get("type"): c.get("status") for c in status.get("conditions") or []}.get("Ready")
    state = "Unknown" if ready is None else ("Ready" if ready == "True" else "NotReady")
    if node.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = ",".join(sorted(k[len(prefix):] for k in labels if k.startswith(prefix))) or NONE
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [node["metadata"]["name"], state, roles, age(node), info.get("kubeletVersion", ""),
            addresses.get("InternalIP") or NONE, addresses.get("ExternalIP") or NONE,
            info.get("osImage", ""), info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", "")]


def _service_row(svc: Obj) -> Row:
    spec = svc.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    external = ",".join(spec.get("externalIPs") or []) or NONE
    if kind == "LoadBalancer":
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or "<pending>"
    elif kind == "ExternalName":
        external = spec.get("externalName", NONE)
    ports = ",".join(
        f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
        else f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or NONE
    return [svc["metadata"]["name"], kind, spec.get("clusterIP") or NONE, external, ports,
            age(svc), _labels(spec.get("selector"))]


def _deployment_row(d: Obj) -> Row:
    st = d.get("status") or {}
    want = d.get("spec", {}).get("replicas", 1)
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{want}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age(d),
            *_template_columns(d)]


def _replicaset_row(rs: Obj) -> Row:
    st = rs.get("status") or {}
    return [rs["metadata"]["name"], rs.get("spec", {}).get("replicas", 1),
            st.get("replicas", 0), st.get("readyReplicas", 0), age(rs), *_template_columns(rs)]


def _daemonset_row(ds: Obj) -> Row:
    st = ds.get("status") or {}
    selector = ds.get("spec", {}).get("template", {}).get("spec", {}).get("nodeSelector")
    return [ds["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0), _labels(selector),
            age(ds), *_template_columns(ds)]


def _first_three(items: list[str]) -> str:
    if not items:
        return NONE
    more = f" + {len(items) - 3} more..." if len(items) > 3 else ""
    return ",".join(items[:3]) + more


def _endpoints_row(ep: Obj) -> Row:
    pairs = []
    for subset in ep.get("subsets") or []:
        ips = [a["ip"] for a in subset.get("addresses") or []]
        ports = [p["port"] for p in subset.get("ports") or []] or [None]
        pairs += [f"{ip}:{port}" if port else ip for port in ports for ip in ips]
    return [ep["metadata"]["name"], _first_three(pairs), age(ep)]


def _slice_row(es: Obj) -> Row:
    ports = ",".join(str(p.get("port")) for p in es.get("ports") or []) or "<unset>"
    ips = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [es["metadata"]["name"], es.get("addressType", ""), ports,
            _first_three(ips).replace(NONE, "<unset>"), age(es)]


def _event_row(ev: Obj) -> Row:
    obj = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    last = since(ev.get("lastTimestamp") or ev.get("eventTime")
                 or ev["metadata"].get("creationTimestamp"))
    first = since(ev.get("firstTimestamp") or ev.get("eventTime"))
    count = ev.get("count") or 1
    if count > 1:
        last = f"{last} (x{count} over {first})"
    source_cell = ", ".join(x for x in (source.get("component"), source.get("host")) if x)
    return [last, ev.get("type", ""), ev.get("reason", ""),
            f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}", obj.get("fieldPath", ""),
            source_cell, ev.get("message", ""), first, count, ev["metadata"]["name"]]


Printer = tuple[list[Obj], Callable[[Obj], Row]]

PRINTERS: dict[str, Printer] = {
    "pods": ([NAME, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE,
              _col("IP", priority=1), _col("Node", priority=1),
              _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)], _pod_row),
    "nodes": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"),
               _col("Internal-IP", priority=1), _col("External-IP", priority=1),
               _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
               _col("Container-Runtime", priority=1)], _node_row),
    "services": ([NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                  _col("Port(s)"), AGE, _col("Selector", priority=1)], _service_row),
    "deployments": ([NAME, _col("Ready"), _col("Up-to-date", "integer"),
                     _col("Available", "integer"), AGE, *TEMPLATE], _deployment_row),
    "replicasets": ([NAME, _col("Desired", "integer"), _col("Current", "integer"),
                     _col("Ready", "integer"), AGE, *TEMPLATE], _replicaset_row),
    "daemonsets": ([NAME, _col("Desired", "integer"), _col("Current", "integer"),
                    _col("Ready", "integer"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), _col("Node Selector"), AGE, *TEMPLATE],
                   _daemonset_row),
    "endpoints": ([NAME, _col("Endpoints"), AGE], _endpoints_row),
    "endpointslices": ([NAME, _col("AddressType"), _col("Ports"), _col("Endpoints"), AGE],
                       _slice_row),
    "configmaps": ([NAME, _col("Data", "integer"), AGE], lambda o: [
        o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]),
    "secrets": ([NAME, _col("Type"), _col("Data", "integer"), AGE], lambda o: [
        o["metadata"]["name"], o.get("type", ""), len(o.get("data") or {}), age(o)]),
    "namespaces": ([NAME, _col("Status"), AGE], lambda o: [
        o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), age(o)]),
    "serviceaccounts": ([NAME, _col("Secrets", "integer"), AGE], lambda o: [
        o["metadata"]["name"], len(o.get("secrets") or []), age(o)]),
    "events": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
                _col("Subobject", priority=1), _col("Source", priority=1), _col("Message"),
                _col("First Seen", priority=1), _col("Count", "integer", 1),
                _col("Name", priority=1)], _event_row),
}
DEFAULT: Printer = ([NAME, AGE], lambda o: [o["metadata"]["name"], age(o)])


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def table(res: Resource, objects: list[Obj], resource_version: str,
          include_object: str = "Metadata") -> Obj:
    """A Table of ``objects``.

    Args:
        res: Their resource type (selects the columns).
        objects: The objects, one row each.
        resource_version: The list's resourceVersion.
        include_object: ``None``, ``Metadata`` (default) or ``Object``: what each row carries.
    """
    columns, printer = PRINTERS.get(res.plural, DEFAULT)
    rows = []
    for obj in objects:
        row: Obj = {"cells": printer(obj)}
        embedded = _row_object(obj, include_object or "Metadata")
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
