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


MULTUS = Pods("kube-system", "name", "multus")
MULTUS_IMAGE = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0"


def multus_objects() -> list[Seed]:
    """multus-cni's deployments/multus-daemonset.yml (thin plugin): kube-multus-ds and its
    ServiceAccount and ConfigMap."""
    labels = {"tier": "node", "app": "multus", "name": "multus"}
    container = {
        "name": "kube-multus", "image": MULTUS_IMAGE, "command": ["/thin_entrypoint"],
        "args": ["--multus-conf-file=auto", "--multus-autoconfig-dir=/host/etc/cni/net.d",
                 "--cni-conf-dir=/host/etc/cni/net.d"],
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "cni", "mountPath": "/host/etc/cni/net.d"},
                         {"name": "cnibin", "mountPath": "/host/opt/cni/bin"}]}
    ds = {"metadata": {"name": "kube-multus-ds", "namespace": "kube-system",
                       "labels": dict(labels)},
          "spec": {"selector": {"matchLabels": {"name": "multus"}},
                   "template": {"metadata": {"labels": dict(labels)}, "spec": {
                       "hostNetwork": True, "containers": [container],
                       "serviceAccountName": "multus", "terminationGracePeriodSeconds": 10,
                       "tolerations": [{"operator": "Exists", "effect": "NoSchedule"},
                                       {"operator": "Exists", "effect": "NoExecute"}],
                       "volumes": [{"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}},
                                   {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}}]}}}}
    cm = {"metadata": {"name": "multus-cni-config", "namespace": "kube-system",
                       "labels": {"tier": "node", "app": "multus"}},
          "data": {"cni-conf.json": '{"name": "multus-cni-network", "type": "multus"}'}}
    return [("", "serviceaccounts", {"metadata": {"name": "multus",
                                                  "namespace": "kube-system"}}),
            ("", "configmaps", cm), ("apps", "daemonsets", ds)]


def multus_seed(lab: LabInfo) -> list[Seed]:
    """kubeadm + Flannel with Multus's thin plugin DaemonSet."""
    return manifests.cluster(lab) + multus_objects()


MULTUS_PROFILE = register(Profile(
    name="multus",
    summary="kubeadm-flannel plus Multus (thin plugin): 00-multus.conf first on every node, "
            "delegating to Flannel's conflist",
    cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", api_service_ip="10.96.0.1",
    dns_service_ip="10.96.0.10", node_pod_cidr=kubeadm_pod_cidr, seed=multus_seed,
    dns=KUBE_DNS, per_node=(FLANNEL, KUBE_PROXY, MULTUS), kube_proxy=KUBE_PROXY,
    cni_daemonset=("kube-flannel", "kube-flannel-ds"),
    cni_plugins=("bridge", "host-local", "loopback", "portmap", "flannel", "multus"),
    settled_files=(*FLANNEL_FILES, "etc/cni/net.d/00-multus.conf"),
    flannel_cni=(CONFLIST, FLANNEL_CONFLIST),
))
