"""kubeadm without kube-proxy (``--skip-phases=addon/kube-proxy``) and Cilium's Helm chart with
kube-proxy replacement, VXLAN tunnelling and cluster-pool IPAM."""

from __future__ import annotations

from typing import Any

from netdoctor.lab import manifests
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.profiles import Pods, Profile, Seed, register
from netdoctor.lab.profiles.kubeadm import KUBE_DNS, kubeadm_pod_cidr

Obj = dict[str, Any]
CILIUM_VERSION = "v1.15.6"
CILIUM = Pods("kube-system", "k8s-app", "cilium")
CILIUM_CONFLIST: Obj = {
    "cniVersion": "0.3.1",
    "name": "cilium",
    "plugins": [{"type": "cilium-cni", "enable-debug": False,
                 "log-file": "/var/run/cilium/cilium-cni.log"}],
}
CILIUM_CONFIG = {
    "cluster-name": "default", "ipam": "cluster-pool",
    "cluster-pool-ipv4-cidr": "10.0.0.0/8", "cluster-pool-ipv4-mask-size": "24",
    "kube-proxy-replacement": "true", "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
    "enable-ipv4": "true", "enable-ipv6": "false", "enable-ipv4-masquerade": "true",
    "enable-bpf-masquerade": "false", "annotate-k8s-node": "true",
    # Leave other CNI configs in place (Helm cni.exclusive=false), as installs that chain
    # or keep another plugin's file do.
    "cni-exclusive": "false", "write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
}


def cilium_pool_cidr(index: int) -> str:
    """The /24 the operator's cluster pool (10.0.0.0/8, mask 24) hands node ``index``."""
    return f"10.0.{index}.0/24"


def cilium_objects() -> list[Seed]:
    """The Helm chart's agent DaemonSet, operator Deployment and cilium-config."""
    agent_labels = {"k8s-app": "cilium", "app.kubernetes.io/part-of": "cilium",
                    "app.kubernetes.io/name": "cilium-agent"}
    agent = {"name": "cilium-agent", "image": f"quay.io/cilium/cilium:{CILIUM_VERSION}",
             "command": ["cilium-agent"], "args": ["--config-dir=/tmp/cilium/config-map"],
             "env": [{"name": "K8S_NODE_NAME",
                      "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
             "securityContext": {"privileged": True},
             "volumeMounts": [{"name": "cilium-run", "mountPath": "/var/run/cilium"},
                              {"name": "etc-cni-netd", "mountPath": "/host/etc/cni/net.d"},
                              {"name": "cilium-config-path",
                               "mountPath": "/tmp/cilium/config-map", "readOnly": True}]}
    ds = {"metadata": {"name": "cilium", "namespace": "kube-system", "labels": agent_labels},
          "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}},
                   "template": {"metadata": {"labels": dict(agent_labels)}, "spec": {
                       "containers": [agent], "hostNetwork": True,
                       "serviceAccountName": "cilium", "priorityClassName":
                       "system-node-critical", "nodeSelector": {"kubernetes.io/os": "linux"},
                       "tolerations": [{"operator": "Exists"}],
                       "volumes": [
                           {"name": "cilium-run", "hostPath": {"path": "/var/run/cilium"}},
                           {"name": "etc-cni-netd", "hostPath": {"path": "/etc/cni/net.d"}},
                           {"name": "cilium-config-path",
                            "configMap": {"name": "cilium-config"}}]}}}}
    op_labels = {"io.cilium/app": "operator", "name": "cilium-operator",
                 "app.kubernetes.io/part-of": "cilium",
                 "app.kubernetes.io/name": "cilium-operator"}
    operator = {"metadata": {"name": "cilium-operator", "namespace": "kube-system",
                             "labels": op_labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": {
                    "io.cilium/app": "operator", "name": "cilium-operator"}},
                    "template": {"metadata": {"labels": dict(op_labels)}, "spec": {
                        "containers": [{"name": "cilium-operator", "image":
                                        f"quay.io/cilium/operator-generic:{CILIUM_VERSION}",
                                        "command": ["cilium-operator-generic"],
                                        "args": ["--config-dir=/tmp/cilium/config-map"]}],
                        "hostNetwork": True, "serviceAccountName": "cilium-operator",
                        "priorityClassName": "system-cluster-critical",
                        "tolerations": [{"operator": "Exists"}]}}}}
    cm = {"metadata": {"name": "cilium-config", "namespace": "kube-system"},
          "data": dict(CILIUM_CONFIG)}
    sas = [("", "serviceaccounts", {"metadata": {"name": n, "namespace": "kube-system"}})
           for n in ("cilium", "cilium-operator")]
    return [*sas, ("", "configmaps", cm), ("apps", "daemonsets", ds),
            ("apps", "deployments", operator)]


def cilium_seed(lab: LabInfo) -> list[Seed]:
    """kubeadm's objects without Flannel and without kube-proxy, plus Cilium's."""
    objs = [o for o in manifests.cluster(lab)
            if o[2]["metadata"].get("namespace") != "kube-flannel"
            and o[2]["metadata"].get("name") not in ("kube-flannel", "kube-proxy")]
    return objs + cilium_objects()


CILIUM_KPR = register(Profile(
    name="cilium-kpr",
    summary="kubeadm 1.29 without kube-proxy, Cilium with kube-proxy replacement, VXLAN and "
            "cluster-pool IPAM",
    cluster_cidr="10.0.0.0/8", service_cidr="10.96.0.0/12", api_service_ip="10.96.0.1",
    dns_service_ip="10.96.0.10", node_pod_cidr=kubeadm_pod_cidr, seed=cilium_seed,
    dns=KUBE_DNS, per_node=(CILIUM,), kube_proxy=None,
    cni_daemonset=("kube-system", "cilium"),
    cni_plugins=("bridge", "host-local", "loopback", "portmap", "cilium-cni"),
    settled_files=("etc/cni/net.d/05-cilium.conflist",), service_chain="CILIUM_SERVICES",
    ipam_range=cilium_pool_cidr, agent_cni=("etc/cni/net.d/05-cilium.conflist",
                                            CILIUM_CONFLIST),
    unsupported={
        "kube-proxy-crashloop": "there is no kube-proxy: Cilium replaces it",
        "iptables-mixed-backend": "there is no kube-proxy writing iptables rules",
        "cni-bridge-conflict": "Cilium wires pods to routed veths, there is no cni0 bridge",
        **dict.fromkeys(("vxlan-fdb-stale", "neigh-stale"),
                        "Cilium keeps tunnel endpoints in BPF maps, not in a kernel FDB or "
                        "neighbour table"),
        "firewall-nodeport": "Cilium's BPF NodePort runs before netfilter: an iptables rule "
                             "does not see NodePort traffic",
    },
))
