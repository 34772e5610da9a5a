"""Cluster profiles: which distribution's shapes and data plane the lab plays.

A profile fixes the cluster's addressing (pod and service CIDRs, the API and DNS
Service IPs), where the nodes keep their CNI files, which objects ``lab up`` seeds
(the CNI agent, kube-proxy, CoreDNS, under the distribution's own names and
labels), which components run inside the node agent instead of as pods, and which
faults make sense. ``docs/lab-profiles.md`` lists what each one looks like and the
distribution sources every shape was checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from netdoctor.lab.containers import LabInfo

Obj = dict[str, Any]
Seed = tuple[str, str, Obj]  # (API group, plural, object)
DEFAULT = "kubeadm-flannel"


@dataclass(frozen=True)
class Pods:
    """Pods of one component, found the way its distribution labels them."""

    namespace: str
    key: str
    value: str

    def matches(self, pod: Obj) -> bool:
        """Whether ``pod`` belongs to this component."""
        meta = pod.get("metadata") or {}
        return meta.get("namespace") == self.namespace and \
            (meta.get("labels") or {}).get(self.key) == self.value


@dataclass(frozen=True)
class NodeTask:
    """A component the node agent runs in-process (k3s): no pod, no DaemonSet."""

    name: str  # "flannel", "kube-proxy"
    image: str  # selects the lab's built-in implementation
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """One cluster shape the lab can play.

    ``per_node`` are the pods that must be Ready on every node before the cluster
    counts as up (CNI agent, kube-proxy). ``cni_daemonset`` is the CNI agent's
    DaemonSet (namespace, name), ``None`` where the agent is embedded. ``unsupported``
    maps a fault to the reason it makes no sense here.
    """

    name: str
    summary: str
    cluster_cidr: str
    service_cidr: str
    api_service_ip: str
    dns_service_ip: str
    node_pod_cidr: Callable[[int], str]
    seed: Callable[[LabInfo], list[Seed]]
    dns: Pods
    per_node: tuple[Pods, ...] = ()
    kube_proxy: Pods | None = None  # None: kube-proxy is embedded or absent
    cni_daemonset: tuple[str, str] | None = None
    node_tasks: tuple[NodeTask, ...] = ()
    cni_conf_dir: str = "etc/cni/net.d"
    cni_bin_dir: str = "opt/cni/bin"
    cni_plugins: tuple[str, ...] = ("bridge", "host-local", "loopback", "portmap", "flannel")
    # Files every node has once the agents did their first work (relative to the root).
    settled_files: tuple[str, ...] = ()
    service_chain: str = "KUBE-SERVICES"  # the nat chain that proves Services are programmed
    # The CNI agent routes each other node's pod range (Flannel's VXLAN routes, BIRD's
    # block routes): settled once every node has them.
    peer_routes: bool = False
    ipam_range: Callable[[int], str] | None = None  # pod addresses when not spec.podCIDR
    # Where Flannel writes its CNI conflist and what it holds; None: another container does.
    flannel_cni: tuple[str, Obj] | None = None
    # The conflist the CNI agent (calico-node, cilium) writes: (path under the root, content).
    agent_cni: tuple[str, Obj] | None = None
    unsupported: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def supports(self, fault: str) -> str | None:
        """``None`` when ``fault`` applies to this profile, else why it does not."""
        return self.unsupported.get(fault)


PROFILES: dict[str, Profile] = {}


def register(profile: Profile) -> Profile:
    """Add ``profile`` to :data:`PROFILES`."""
    PROFILES[profile.name] = profile
    return profile


def get(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        KeyError: no such profile; the message lists the known ones.
    """
    _load()
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(names())}")
    return PROFILES[name]


def names() -> list[str]:
    """Every profile name, the default first."""
    _load()
    return sorted(PROFILES, key=lambda n: (n != DEFAULT, n))


def scale_dns(seed: list[Seed], dns: Pods, replicas: int) -> None:
    """Give the DNS Deployment in ``seed`` ``replicas`` replicas on distinct nodes.

    Raises:
        ValueError: the cluster DNS is not a Deployment (a DaemonSet runs on every node).
    """
    for _, plural, obj in seed:
        labels = (obj["spec"].get("template", {}).get("metadata", {}).get("labels")
                  if plural in ("deployments", "daemonsets") else None) or {}
        if obj["metadata"].get("namespace") != dns.namespace or \
                labels.get(dns.key) != dns.value:
            continue
        if plural != "deployments":
            raise ValueError(f"the cluster DNS {dns.namespace}/{obj['metadata']['name']} is a "
                             "DaemonSet (one replica per node); --dns-replicas applies to a "
                             "DNS Deployment")
        obj["spec"]["replicas"] = replicas
        # kubeadm's CoreDNS prefers spreading; required here, so N replicas are N nodes.
        obj["spec"]["template"]["spec"].setdefault("affinity", {})["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {dns.key: dns.value}},
                "topologyKey": "kubernetes.io/hostname"}]}
        return
    raise ValueError(f"no DNS Deployment labelled {dns.key}={dns.value} in {dns.namespace}")


def _load() -> None:
    from netdoctor.lab.profiles import calico, cilium, kubeadm, rancher, rke2  # noqa: F401
