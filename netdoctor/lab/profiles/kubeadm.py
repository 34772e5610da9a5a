"""kubeadm-based profiles on the Flannel data plane: plain, with Multus, with OpenShift's DNS."""

from __future__ import annotations

from netdoctor.lab import manifests
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.net.flannel import CONFLIST, FLANNEL_CONFLIST
from netdoctor.lab.profiles import Pods, Profile, Seed, register

FLANNEL = Pods("kube-flannel", "app", "flannel")
KUBE_PROXY = Pods("kube-system", "k8s-app", "kube-proxy")
KUBE_DNS = Pods("kube-system", "k8s-app", "kube-dns")
FLANNEL_FILES = ("run/flannel/subnet.env", "etc/cni/net.d/10-flannel.conflist")


def kubeadm_pod_cidr(index: int) -> str:
    """kube-controller-manager's /24 per node from 10.244.0.0/16."""
    return f"10.244.{index}.0/24"


KUBEADM_FLANNEL = register(Profile(
    name="kubeadm-flannel",
    summary="kubeadm 1.29, Flannel VXLAN DaemonSet, kube-proxy DaemonSet, CoreDNS Deployment",
    cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", api_service_ip="10.96.0.1",
    dns_service_ip="10.96.0.10", node_pod_cidr=kubeadm_pod_cidr, seed=manifests.cluster,
    dns=KUBE_DNS, per_node=(FLANNEL, KUBE_PROXY), kube_proxy=KUBE_PROXY,
    cni_daemonset=("kube-flannel", "kube-flannel-ds"), settled_files=FLANNEL_FILES,
    flannel_cni=(CONFLIST, FLANNEL_CONFLIST),
))


def flannel_seed_only(lab: LabInfo) -> list[Seed]:
    """The Flannel DaemonSet and its ConfigMap, to restore them after a fault."""
    return manifests.flannel(lab.cluster_cidr)
