"""The cluster profile: what the cluster is made of, read once per session from API objects.

Components are found by role (:mod:`netdoctor.cluster.roles`), not by one guessed name: the
CNI by its agents in any namespace, else Flannel's node annotations
(``flannel.alpha.coreos.com/*``); kube-proxy as DaemonSet pods, static (mirror) pods, replaced
by the CNI, or undecided until node facts tell embedded from missing
(:func:`netdoctor.cluster.applicability.refine`); the DNS workload behind the DNS Service.

Example:
    >>> node = node_info({"metadata": {"name": "w1"}, "spec": {"podCIDR": "10.244.1.0/24"},
    ...                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    >>> node.ready, node.pod_cidr
    (True, '10.244.1.0/24')
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from netdoctor.cluster import roles
from netdoctor.cluster.client import Cluster
from netdoctor.cluster.roles import PODCIDR_IPAM

FLANNEL_ANNOTATION = "flannel.alpha.coreos.com/"
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

    @property
    def labels(self) -> dict[str, str]:
        """The selector as a label map (``a=b,c=d`` -> ``{"a": "b", "c": "d"}``)."""
        return dict(kv.split("=", 1) for kv in self.selector.split(",") if "=" in kv)

    def selects(self, pod: Mapping[str, Any]) -> bool:
        """``pod`` is in the workload's namespace and carries every selector label.

        Example:
            >>> w = Workload("Deployment", "kube-system", "coredns", "k8s-app=kube-dns", ())
            >>> w.selects({"metadata": {"namespace": "kube-system",
            ...                         "labels": {"k8s-app": "kube-dns", "x": "y"}}})
            True
        """
        meta = pod.get("metadata") or {}
        return bool(self.labels) and meta.get("namespace") == self.namespace and \
            self.labels.items() <= (meta.get("labels") or {}).items()


KUBE_PROXY_RUNS = ("daemonset", "static", "embedded", "replaced", "missing", "undecided")
"""How kube-proxy runs: DaemonSet pods, static (mirror) pods, inside the node agent (rules,
no pods), replaced by the CNI, missing, or undecided until node facts tell embedded from
missing."""


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
    cni_agent: Workload | None = None
    """The CNI's node agent (Flannel's, calico-node, canal, cilium, kindnet, aws-node...)."""
    cni_meta: tuple[Workload, ...] = ()
    """Meta-plugins in front of the CNI (Multus)."""
    cni_embedded: bool | None = None
    """The CNI runs inside the node agent (k3s's Flannel); ``None`` until node facts tell."""
    cni_reason: str = ""
    kube_proxy_runs: str = "undecided"
    kube_proxy_reason: str = ""
    kube_proxy_nodes: tuple[str, ...] = ()
    """Where kube-proxy is embedded: the nodes whose KUBE-SERVICES rules show it runs."""
    kube_proxy_blocked: tuple[str, ...] = ()
    """Where kube-proxy is embedded: nodes whose iptables cannot manage a table, so the
    embedded kube-proxy cannot sync its rules (its failures show nowhere else)."""
    dns_service: str = ""
    """``namespace/name`` of the cluster DNS Service."""
    cluster_domain: str = ""
    """From a probe pod's resolv.conf search path (``svc.<domain>``); "" until read."""
    node_facts: str = ""
    """"read" once node probes reported, else why not ("" before they ran)."""

    @property
    def ready_nodes(self) -> tuple[NodeInfo, ...]:
        """Nodes whose Ready condition is True."""
        return tuple(n for n in self.nodes if n.ready)

    @property
    def runs_flannel(self) -> bool:
        """Flannel is the CNI: its DaemonSet exists or it annotated the nodes."""
        return self.cni == "flannel"

    @property
    def ipam_from_podcidr(self) -> bool:
        """The CNI hands out pod addresses from each node's ``spec.podCIDR``."""
        return self.cni in PODCIDR_IPAM

    def to_summary(self) -> dict[str, Any]:
        """JSON-serialisable form for ``set_cluster_profile``."""
        data = asdict(self)
        data["nodes"] = [{k: v for k, v in asdict(n).items() if k != "labels"}
                         for n in self.nodes]
        data["ipam_from_podcidr"] = self.ipam_from_podcidr
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
    """The Flannel DaemonSet in any namespace, by image, ``app=flannel`` label or name
    (not Canal's, which runs Flannel next to Calico)."""
    for ds in daemonsets:
        if roles.cni_family_of(ds) == "flannel" \
                or ds["metadata"]["name"] in ("kube-flannel-ds", "kube-flannel"):
            return workload("DaemonSet", ds)
    return None


def find_other_cni(daemonsets: Iterable[Mapping[str, Any]]) -> str:
    """Name of a non-Flannel CNI recognised by its agent DaemonSet, or ``""``."""
    family = roles.find_cni_agents(daemonsets).family
    return "" if family == "flannel" else family


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


def _kube_proxy(daemonsets: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]],
                configmaps: Sequence[Mapping[str, Any]]) -> tuple[Workload | None, str, str]:
    """(workload, how it runs, why) from DaemonSets, mirror pods and ConfigMaps."""
    ds = next((d for d in daemonsets if roles.is_kube_proxy_ds(d)), None)
    if ds is not None:
        found = workload("DaemonSet", ds)
        return found, "daemonset", found.ref
    mirrors = [p for p in roles.kube_proxy_pods(pods) if roles.is_mirror_pod(p)]
    if mirrors:
        first = mirrors[0]
        key, value = next(kv for kv in roles.KUBE_PROXY_LABELS
                          if kv in roles.labels(first).items())
        ns = first["metadata"].get("namespace", "")
        return (Workload("StaticPod", ns, "kube-proxy", f"{key}={value}",
                         tuple(str(c.get("image", "")) for c in roles.containers(first))),
                "static", f"static pods on the nodes (mirror pods {key}={value} in {ns})")
    replaced = roles.replacement(daemonsets, configmaps)
    if replaced:
        return None, "replaced", replaced
    left = roles.kube_proxy_config_left(configmaps)
    if left:
        return None, "missing", f"no kube-proxy DaemonSet or pod, yet its ConfigMap {left} exists"
    return None, "undecided", "no kube-proxy pod and no replacement found"


def _cni(nodes: Sequence[NodeInfo], daemonsets: Sequence[Mapping[str, Any]],
         configmaps: Sequence[Mapping[str, Any]]
         ) -> tuple[str, Workload | None, tuple[Workload, ...], bool | None, str]:
    """(family, agent, meta-plugins, embedded, why) from agents and node annotations."""
    found = roles.find_cni_agents(daemonsets)
    meta = tuple(workload("DaemonSet", d) for d in found.meta)
    if found.agents:
        agent = workload("DaemonSet", found.agents[0])
        return found.family, agent, meta, False, f"agent {agent.ref}"
    if any(n.flannel_annotated for n in nodes):
        left = roles.flannel_config_left(configmaps)
        if left:
            return ("flannel", None, meta, False, "nodes carry Flannel's annotations and its "
                    f"DaemonSet's ConfigMap {left} exists, but no Flannel DaemonSet")
        return ("flannel", None, meta, None, "nodes carry Flannel's annotations and no Flannel "
                "DaemonSet exists: embedded in the node agent if the nodes run flannel.1")
    return "unknown", None, meta, None, "no known CNI agent DaemonSet"


def build_profile(
    server: str,
    nodes: Iterable[Mapping[str, Any]],
    daemonsets: Iterable[Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]],
    services: Iterable[Mapping[str, Any]],
    configmaps: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]] = (),
) -> ClusterProfile:
    """Assemble the profile from listed objects (pure: unit-testable).

    ``configmaps`` are read in every namespace (kube-proxy's mode, Cilium's
    kube-proxy replacement, Flannel's own configuration); ``pods`` need only be the
    kube-proxy-labelled ones (static pods show only as mirror pods).
    """
    node_infos = tuple(sorted((node_info(n) for n in nodes), key=lambda n: n.name))
    ds_list, svc_list, cms = list(daemonsets), list(services), list(configmaps)
    cni, agent, meta, embedded, why = _cni(node_infos, ds_list, cms)
    proxy, runs, proxy_why = _kube_proxy(ds_list, list(pods), cms)
    candidates = [("Deployment", d) for d in deployments] + [("DaemonSet", d) for d in ds_list]
    dns_w = roles.dns_workload(svc_list, candidates)
    dns = roles.dns_service(svc_list)
    return ClusterProfile(
        server=server, nodes=node_infos,
        dns_service_ip=str((dns.get("spec") or {}).get("clusterIP") or "") if dns else "",
        service_cidr_guess=service_cidr_guess(svc_list), cni=cni,
        flannel=agent if cni == "flannel" else None,
        kube_proxy=proxy,
        kube_proxy_mode=kube_proxy_mode(cms, proxy.namespace) if proxy else runs,
        coredns=workload(*dns_w) if dns_w else None,
        cni_agent=agent, cni_meta=meta, cni_embedded=embedded, cni_reason=why,
        kube_proxy_runs=runs, kube_proxy_reason=proxy_why,
        dns_service=f"{dns['metadata'].get('namespace', '')}/{dns['metadata']['name']}"
        if dns else "",
    )


async def read_profile(cluster: Cluster) -> ClusterProfile:
    """List what the profile needs, concurrently, and build it."""
    nodes, daemonsets, deployments, services, configmaps, *proxies = await asyncio.gather(
        cluster.list("nodes"), cluster.list("daemonsets"), cluster.list("deployments"),
        cluster.list("services"), cluster.list("configmaps"),
        *(cluster.list("pods", selector=f"{k}={v}") for k, v in roles.KUBE_PROXY_LABELS))
    return build_profile(cluster.server, nodes, daemonsets, deployments, services, configmaps,
                         [p for found in proxies for p in found])
