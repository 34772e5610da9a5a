"""API object shapes of real distributions, trimmed to the fields discovery reads.

Each builder names the source its shape was checked against. Names, namespaces, labels,
container names, images and owner kinds are the distributions' own.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def daemonset(ns: str, name: str, labels: dict[str, str], containers: list[Obj],
              template_labels: dict[str, str] | None = None, desired: int = 3) -> Obj:
    """A DaemonSet with its pod template."""
    tl = template_labels or labels
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"selector": {"matchLabels": tl},
                     "template": {"metadata": {"labels": tl}, "spec": {"containers": containers}}},
            "status": {"desiredNumberScheduled": desired, "numberReady": desired}}


def deployment(ns: str, name: str, labels: dict[str, str], containers: list[Obj],
               replicas: int = 2) -> Obj:
    """A Deployment with its pod template."""
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": containers}}}}


def service(ns: str, name: str, selector: dict[str, str], ip: str,
            labels: dict[str, str] | None = None, port: int = 53) -> Obj:
    """A ClusterIP Service."""
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"clusterIP": ip, "selector": selector,
                     "ports": [{"name": "dns", "port": port, "protocol": "UDP"}]}}


def node(name: str, cidr: str, annotations: dict[str, str] | None = None) -> Obj:
    """A Ready node."""
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"podCIDR": cidr},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.4.10"}]}}


# kubernetes/kubernetes cluster/addons/dns/coredns/coredns.yaml.base: Deployment coredns,
# k8s-app=kube-dns, Service kube-dns with the same label.
COREDNS = deployment("kube-system", "coredns", {"k8s-app": "kube-dns"},
                     [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.1"}])


def kube_dns(ip: str) -> Obj:
    """kube-system/kube-dns (kubeadm, k3s: k3s-io/k3s manifests/coredns.yaml)."""
    return service("kube-system", "kube-dns", {"k8s-app": "kube-dns"}, ip,
                   labels={"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"})


# flannel-io/flannel Documentation/kube-flannel.yml: namespace kube-flannel, DaemonSet
# kube-flannel-ds, labels app=flannel k8s-app=flannel tier=node, container kube-flannel,
# ConfigMap kube-flannel-cfg with cni-conf.json and net-conf.json.
FLANNEL_DS = daemonset("kube-flannel", "kube-flannel-ds",
                       {"app": "flannel", "k8s-app": "flannel", "tier": "node"},
                       [{"name": "kube-flannel", "image": "docker.io/flannel/flannel:v0.25.5"}])
FLANNEL_CM = {"metadata": {"namespace": "kube-flannel", "name": "kube-flannel-cfg"},
              "data": {"cni-conf.json": "{}", "net-conf.json": "{}"}}

# kubernetes/kubernetes cmd/kubeadm/app/phases/addons/proxy/manifests.go: DaemonSet
# kube-system/kube-proxy, k8s-app=kube-proxy, ConfigMap kube-proxy with config.conf.
KUBE_PROXY_DS = daemonset("kube-system", "kube-proxy", {"k8s-app": "kube-proxy"},
                          [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.29.2"}])
KUBE_PROXY_CM = {"metadata": {"namespace": "kube-system", "name": "kube-proxy"},
                 "data": {"config.conf": "mode: iptables\n"}}

# k3s-io/k3s pkg/agent/flannel/setup.go + flannel's kube subnet manager: node annotations
# flannel.alpha.coreos.com/* written by the embedded Flannel; no DaemonSet, no pod.
K3S_FLANNEL_ANNOTATIONS = {
    "flannel.alpha.coreos.com/backend-data": '{"VNIEncap":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}',
    "flannel.alpha.coreos.com/backend-type": "vxlan",
    "flannel.alpha.coreos.com/kube-subnet-manager": "true",
    "flannel.alpha.coreos.com/public-ip": "192.168.4.10",
}

# rancher/rke2 pkg/staticpod/staticpod.go: static pods named after the command, namespace
# kube-system, labels component=<command> tier=control-plane; the kubelet's mirror pod is
# <name>-<node>, annotated kubernetes.io/config.mirror and owned by the Node.


def mirror_pod(name: str, node_name: str, labels: dict[str, str], image: str) -> Obj:
    """A static pod's mirror pod as the kubelet posts it."""
    return {"metadata": {"namespace": "kube-system", "name": f"{name}-{node_name}",
                         "labels": labels,
                         "annotations": {"kubernetes.io/config.mirror": "3f1e0c",
                                         "kubernetes.io/config.source": "file"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                              "name": node_name, "controller": True}]},
            "spec": {"nodeName": node_name, "hostNetwork": True,
                     "containers": [{"name": name, "image": image}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


RKE2_PROXY_LABELS = {"component": "kube-proxy", "tier": "control-plane"}
# kubernetes/kubernetes cluster/gce/manifests/kube-proxy.manifest (GKE): component=kube-proxy,
# tier=node.
GKE_PROXY_LABELS = {"component": "kube-proxy", "tier": "node"}

# rancher/rke2-charts rke2-canal: DaemonSet kube-system/rke2-canal, k8s-app=canal, containers
# calico-node (rancher/hardened-calico) and kube-flannel (rancher/hardened-flannel).
RKE2_CANAL = daemonset("kube-system", "rke2-canal", {"k8s-app": "canal"}, [
    {"name": "calico-node", "image": "rancher/hardened-calico:v3.28.1-build20240806"},
    {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.25.5-build20240801"}])
# rancher/rke2-charts rke2-coredns (rancher/rke2#2635): Deployment and Service
# rke2-coredns-rke2-coredns labelled k8s-app=kube-dns.
RKE2_COREDNS = deployment("kube-system", "rke2-coredns-rke2-coredns",
                          {"k8s-app": "kube-dns", "app.kubernetes.io/instance": "rke2-coredns"},
                          [{"name": "coredns", "image": "rancher/hardened-coredns:v1.11.1"}])
RKE2_DNS_SVC = service("kube-system", "rke2-coredns-rke2-coredns",
                       {"k8s-app": "kube-dns", "app.kubernetes.io/instance": "rke2-coredns"},
                       "10.43.0.10", labels={"k8s-app": "kube-dns"})

# projectcalico/calico manifests/calico.yaml: DaemonSet calico-node, k8s-app=calico-node,
# container calico-node, image docker.io/calico/node; the operator puts it in calico-system.
CALICO_NODE = daemonset("calico-system", "calico-node", {"k8s-app": "calico-node"},
                        [{"name": "calico-node", "image": "docker.io/calico/node:v3.28.0",
                          "env": [{"name": "FELIX_BPFENABLED", "value": "false"}]}])

# cilium/cilium install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml: DaemonSet
# cilium, k8s-app=cilium, container cilium-agent; cilium-envoy is its own DaemonSet
# (k8s-app=cilium-envoy). cilium-configmap.yaml: kube-proxy-replacement: "true",
# write-cni-conf-when-ready .../05-cilium.conflist.
CILIUM = daemonset("kube-system", "cilium", {"k8s-app": "cilium"},
                   [{"name": "cilium-agent",
                     "image": "quay.io/cilium/cilium:v1.16.1@sha256:0b4a3ab4"}])
CILIUM_ENVOY = daemonset("kube-system", "cilium-envoy", {"k8s-app": "cilium-envoy"},
                         [{"name": "cilium-envoy",
                           "image": "quay.io/cilium/cilium-envoy:v1.29.7@sha256:bd5ff8c6"}])
CILIUM_CONFIG = {"metadata": {"namespace": "kube-system", "name": "cilium-config"},
                 "data": {"kube-proxy-replacement": "true", "cni-exclusive": "true"}}

# k8snetworkplumbingwg/multus-cni deployments/multus-daemonset-thick.yml: DaemonSet
# kube-system/kube-multus-ds, labels tier=node app=multus name=multus, container kube-multus.
MULTUS = daemonset("kube-system", "kube-multus-ds", {"tier": "node", "app": "multus",
                                                     "name": "multus"},
                   [{"name": "kube-multus",
                     "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0-thick"}])

# openshift/cluster-dns-operator assets/dns/daemonset.yaml and service.yaml: DaemonSet
# openshift-dns/dns-default (owning-dns label; pods dns.operator.openshift.io/daemonset-dns=
# default, container "dns"), Service dns-default selecting those pods; no kube-dns.
OPENSHIFT_DNS = daemonset(
    "openshift-dns", "dns-default", {"dns.operator.openshift.io/owning-dns": "default"},
    [{"name": "dns", "image": "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:5d1f"},
     {"name": "kube-rbac-proxy", "image": "quay.io/openshift-release-dev/ocp-v4.0-art-dev"}],
    template_labels={"dns.operator.openshift.io/daemonset-dns": "default"})
OPENSHIFT_DNS_SVC = service("openshift-dns", "dns-default",
                            {"dns.operator.openshift.io/daemonset-dns": "default"},
                            "172.30.0.10", labels={"dns.operator.openshift.io/owning-dns":
                                                   "default"})

# aws/amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml: DaemonSet kube-system/aws-node,
# k8s-app=aws-node, container aws-node, image .../amazon-k8s-cni.
AWS_NODE = daemonset("kube-system", "aws-node", {"k8s-app": "aws-node"},
                     [{"name": "aws-node", "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com"
                                                    "/amazon-k8s-cni:v1.18.3"}])
# kubernetes-sigs/kind pkg/build/nodeimage/const_cni.go: DaemonSet kube-system/kindnet,
# app=kindnet, container kindnet-cni, image kindest/kindnetd.
KINDNET = daemonset("kube-system", "kindnet", {"app": "kindnet", "k8s-app": "kindnet",
                                               "tier": "node"},
                    [{"name": "kindnet-cni", "image": "docker.io/kindest/kindnetd:v20240513"}])
