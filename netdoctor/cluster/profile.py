"""The cluster profile: what the cluster is made of, read once per session from API objects.

Components are found by what they are, not by one guessed name: Flannel by its image, its
``app=flannel`` label or its name in any namespace; kube-proxy by ``k8s-app=kube-proxy`` or its
name; CoreDNS by ``k8s-app=kube-dns``. Whether the cluster *runs* Flannel is also known when its
DaemonSet is gone: Flannel annotates every node it manages (``flannel.alpha.coreos.com/*``).

Example:
    >>> node = node_info({"metadata": {"name": "w1"}, "spec": {"podCIDR": "10.244.1.0/24"},
    ...                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    >>> node.ready, node.pod_cidr
    (True, '10.244.1.0/24')
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from netdoctor.cluster.client import Cluster

FLANNEL_ANNOTATION = "flannel.alpha.coreos.com/"
OTHER_CNIS: tuple[str, ...] = ("calico", "cilium", "weave", "antrea", "kube-router", "canal")
COREDNS_SELECTOR = "k8s-app=kube-dns"
KUBE_PROXY_SELECTOR = "k8s-app=kube-proxy"


@dataclass(frozen=True)
class NodeInfo:
    """One node as the checks need it."""

    name: str
    ready: bool
    unschedulable: bool
    taints: tuple[str, ...]
    internal_ip: str
    pod_cidr: str
    flannel_annotated: bool
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    """The node's labels (``kubernetes.io/os``, ``kubernetes.io/arch`` decide placement)."""


@dataclass(frozen=True)
class Workload:
    """Where a component's DaemonSet or Deployment lives and its pod selector."""

    kind: str
    namespace: str
    name: str
    selector: str
    images: tuple[str, ...]

    @property
    def ref(self) -> str:
        """``kind namespace/name``."""
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class ClusterProfile:
    """What the cluster is made of (no secrets: safe for ``summary.json``)."""

    server: str
    nodes: tuple[NodeInfo, ...]
    dns_service_ip: str
    service_cidr_guess: str
    cni: str
    flannel: Workload | None
    kube_proxy: Workload | None
    kube_proxy_mode: str
    coredns: Workload | None

    @property
    def ready_nodes(self) -> tuple[NodeInfo, ...]:
        """Nodes whose Ready condition is True."""
        return tuple(n for n in self.nodes if n.ready)

    @property
    def runs_flannel(self) -> bool:
        """Flannel is the CNI: its DaemonSet exists or it annotated the nodes."""
        return self.cni == "flannel"

    def to_summary(self) -> dict[str, Any]:
        """JSON-serialisable form for ``set_cluster_profile``."""
        data = asdict(self)
        data["nodes"] = [{k: v for k, v in asdict(n).items() if k != "labels"}
                         for n in self.nodes]
        return data


def _condition(obj: Mapping[str, Any], kind: str) -> bool:
    conds = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conds)


def node_info(obj: Mapping[str, Any]) -> NodeInfo:
    """A :class:`NodeInfo` from a Node object."""
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    ip = next((a["address"] for a in status.get("addresses") or []
               if a.get("type") == "InternalIP"), "")
    taints = tuple(f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
                   for t in spec.get("taints") or [])
    annotations = meta.get("annotations") or {}
    return NodeInfo(
        name=meta["name"], ready=_condition(obj, "Ready"),
        unschedulable=bool(spec.get("unschedulable")), taints=taints, internal_ip=ip,
        pod_cidr=spec.get("podCIDR") or "",
        flannel_annotated=any(k.startswith(FLANNEL_ANNOTATION) for k in annotations),
        labels=dict(meta.get("labels") or {}),
    )


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``matchLabels`` as a label selector string (``a=b,c=d``)."""
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def workload(kind: str, obj: Mapping[str, Any]) -> Workload:
    """A :class:`Workload` from a DaemonSet or Deployment object."""
    containers = obj["spec"]["template"]["spec"].get("containers") or []
    return Workload(kind, obj["metadata"]["namespace"], obj["metadata"]["name"],
                    selector_string(obj["spec"].get("selector")),
                    tuple(c.get("image", "") for c in containers))


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = obj["metadata"].get("labels") or {}
    return labels


def find_flannel(daemonsets: Iterable[Mapping[str, Any]]) -> Workload | None:
    """The Flannel DaemonSet in any namespace, by image, ``app=flannel`` label or name."""
    for ds in daemonsets:
        tmpl = ds["spec"]["template"]
        images = [c.get("image", "") for c in tmpl["spec"].get("containers") or []]
        if (any("flannel" in i.rsplit("/", 1)[-1] for i in images)
                or _labels(ds).get("app") == "flannel"
                or (tmpl.get("metadata", {}).get("labels") or {}).get("app") == "flannel"
                or ds["metadata"]["name"] in ("kube-flannel-ds", "kube-flannel")):
            return workload("DaemonSet", ds)
    return None


def find_other_cni(daemonsets: Iterable[Mapping[str, Any]]) -> str:
    """Name of a non-Flannel CNI recognised by its DaemonSet's name or images, or ``""``."""
    for ds in daemonsets:
        images = " ".join(c.get("image", "") for c in
                          ds["spec"]["template"]["spec"].get("containers") or [])
        for cni in OTHER_CNIS:
            if cni in ds["metadata"]["name"] or cni in images:
                return cni
    return ""


def find_by_label_or_name(
    kind: str, objs: Iterable[Mapping[str, Any]], selector: str, name: str
) -> Workload | None:
    """The first object whose labels or pod selector include ``selector``, else by ``name``."""
    key, _, value = selector.partition("=")
    listed = list(objs)
    for obj in listed:
        tmpl_labels = obj["spec"]["template"].get("metadata", {}).get("labels") or {}
        if _labels(obj).get(key) == value or tmpl_labels.get(key) == value:
            return workload(kind, obj)
    return next((workload(kind, o) for o in listed if o["metadata"]["name"] == name), None)


def kube_proxy_mode(configmaps: Iterable[Mapping[str, Any]], ns: str) -> str:
    """``mode`` from the kube-proxy ConfigMap's ``config.conf`` (``iptables`` when empty)."""
    for cm in configmaps:
        if cm["metadata"]["name"] != "kube-proxy" or cm["metadata"]["namespace"] != ns:
            continue
        try:
            conf = yaml.safe_load((cm.get("data") or {}).get("config.conf", "")) or {}
        except yaml.YAMLError:
            return "unreadable"
        mode = conf.get("mode") if isinstance(conf, dict) else None
        # kube-proxy on Linux treats an empty mode as iptables
        return str(mode) if mode else "iptables"
    return "unknown"


def service_cidr_guess(services: Iterable[Mapping[str, Any]]) -> str:
    """The smallest /16 (or /12) holding every ClusterIP: a guess, the API does not say."""
    ips = [ipaddress.ip_address(s["spec"]["clusterIP"]) for s in services
           if s.get("spec", {}).get("clusterIP") not in (None, "", "None")]
    ips = [ip for ip in ips if ip.version == 4]
    if not ips:
        return ""
    for prefix in (16, 12):
        nets = {ipaddress.ip_network(f"{ip}/{prefix}", strict=False) for ip in ips}
        if len(nets) == 1:
            return str(nets.pop())
    return ""


def build_profile(
    server: str,
    nodes: Iterable[Mapping[str, Any]],
    daemonsets: Iterable[Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]],
    services: Iterable[Mapping[str, Any]],
    configmaps: Iterable[Mapping[str, Any]],
) -> ClusterProfile:
    """Assemble the profile from listed objects (pure: unit-testable)."""
    node_infos = tuple(sorted((node_info(n) for n in nodes), key=lambda n: n.name))
    ds_list, svc_list = list(daemonsets), list(services)
    flannel = find_flannel(ds_list)
    other = find_other_cni(ds_list)
    if flannel is not None or any(n.flannel_annotated for n in node_infos):
        cni = "flannel"
    else:
        cni = other or "unknown"
    kube_proxy = find_by_label_or_name("DaemonSet", ds_list, KUBE_PROXY_SELECTOR, "kube-proxy")
    coredns = find_by_label_or_name("Deployment", deployments, COREDNS_SELECTOR, "coredns")
    dns = next((s for s in svc_list if s["metadata"]["name"] == "kube-dns"
                or _labels(s).get("k8s-app") == "kube-dns"), None)
    return ClusterProfile(
        server=server, nodes=node_infos,
        dns_service_ip=(dns or {}).get("spec", {}).get("clusterIP", "") if dns else "",
        service_cidr_guess=service_cidr_guess(svc_list), cni=cni, flannel=flannel,
        kube_proxy=kube_proxy,
        kube_proxy_mode=kube_proxy_mode(configmaps, kube_proxy.namespace) if kube_proxy
        else "absent",
        coredns=coredns,
    )


async def read_profile(cluster: Cluster) -> ClusterProfile:
    """List what the profile needs, concurrently, and build it."""
    nodes, daemonsets, deployments, services = await asyncio.gather(
        cluster.list("nodes"), cluster.list("daemonsets"), cluster.list("deployments"),
        cluster.list("services"))
    proxy = find_by_label_or_name("DaemonSet", daemonsets, KUBE_PROXY_SELECTOR, "kube-proxy")
    configmaps = await cluster.list("configmaps", namespace=proxy.namespace) if proxy else []
    return build_profile(cluster.server, nodes, daemonsets, deployments, services, configmaps)
