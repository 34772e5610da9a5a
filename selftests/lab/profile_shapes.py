"""What each lab profile promises, as data: the object shapes and addressing of its distribution.

The profile tests compare a running lab against these; docs/lab-profiles.md gives the
sources each shape was checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

Ref = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Shape:
    """One profile's promised shape.

    ``kube_proxy`` is ``daemonset``, ``static`` (mirror pods), ``embedded`` (rules, no
    pods) or ``none`` (no kube-proxy rules at all).
    """

    profile: str
    cni_conf: str  # the CNI's own config, relative to a node's root
    cni_type: str  # the first plugin's type in it (after following a meta-plugin)
    daemonsets: frozenset[Ref]  # DaemonSets that exist
    kube_proxy: str
    dns_service: tuple[str, str, str]  # namespace, name, ClusterIP
    dns_workload: tuple[str, str, str]  # kind, namespace, name
    cluster_cidr: str  # every pod IP is in here
    service_cidr: str
    api_ip: str
    node_cidr_prefix: str  # spec.podCIDR of node N: this + N (or 2N for /23s) + ".0/.."
    pods_from_node_cidr: bool = True  # pod IPs inside their node's spec.podCIDR
    meta_conf: str | None = None  # a meta-plugin config that sorts first (Multus)
    search: str = "svc.cluster.local svc.cluster.local cluster.local"
    devices: tuple[str, ...] = ("flannel.1", "cni0")  # links every node has
    veth_prefix: str = "veth"  # host end of a pod's veth
    routed_via_nodes: bool = False  # other nodes' pod ranges routed via their InternalIP


KUBEADM_DS = frozenset({("kube-flannel", "kube-flannel-ds"), ("kube-system", "kube-proxy")})

SHAPES: dict[str, Shape] = {s.profile: s for s in (
    Shape("kubeadm-flannel", "etc/cni/net.d/10-flannel.conflist", "flannel", KUBEADM_DS,
          "daemonset", ("kube-system", "kube-dns", "10.96.0.10"),
          ("Deployment", "kube-system", "coredns"), "10.244.0.0/16", "10.96.0.0/12",
          "10.96.0.1", "10.244."),
    Shape("k3s", "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist", "flannel",
          frozenset(), "embedded", ("kube-system", "kube-dns", "10.43.0.10"),
          ("Deployment", "kube-system", "coredns"), "10.42.0.0/16", "10.43.0.0/16",
          "10.43.0.1", "10.42."),
    Shape("calico", "etc/cni/net.d/10-calico.conflist", "calico",
          frozenset({("calico-system", "calico-node"), ("kube-system", "kube-proxy")}),
          "daemonset", ("kube-system", "kube-dns", "10.96.0.10"),
          ("Deployment", "kube-system", "coredns"), "10.244.0.0/16", "10.96.0.0/12",
          "10.96.0.1", "10.244.", pods_from_node_cidr=False, devices=("vxlan.calico",),
          veth_prefix="cali", routed_via_nodes=True),
    Shape("multus", "etc/cni/net.d/10-flannel.conflist", "flannel",
          KUBEADM_DS | {("kube-system", "kube-multus-ds")}, "daemonset",
          ("kube-system", "kube-dns", "10.96.0.10"), ("Deployment", "kube-system", "coredns"),
          "10.244.0.0/16", "10.96.0.0/12", "10.96.0.1", "10.244.",
          meta_conf="etc/cni/net.d/00-multus.conf"),
    Shape("rke2-canal", "etc/cni/net.d/10-canal.conflist", "calico",
          frozenset({("kube-system", "rke2-canal")}), "static",
          ("kube-system", "rke2-coredns-rke2-coredns", "10.43.0.10"),
          ("Deployment", "kube-system", "rke2-coredns-rke2-coredns"), "10.42.0.0/16",
          "10.43.0.0/16", "10.43.0.1", "10.42.", devices=("flannel.1",), veth_prefix="cali"),
    Shape("openshift-dns", "etc/cni/net.d/10-flannel.conflist", "flannel",
          KUBEADM_DS | {("openshift-dns", "dns-default")}, "daemonset",
          ("openshift-dns", "dns-default", "172.30.0.10"),
          ("DaemonSet", "openshift-dns", "dns-default"), "10.128.0.0/14", "172.30.0.0/16",
          "172.30.0.1", "10.128."),
    Shape("cilium-kpr", "etc/cni/net.d/05-cilium.conflist", "cilium-cni",
          frozenset({("kube-system", "cilium")}), "none",
          ("kube-system", "kube-dns", "10.96.0.10"), ("Deployment", "kube-system", "coredns"),
          "10.0.0.0/8", "10.96.0.0/12", "10.96.0.1", "10.244.", pods_from_node_cidr=False,
          devices=("cilium_host", "cilium_net", "cilium_vxlan"), veth_prefix="lxc"),
)}
