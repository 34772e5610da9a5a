"""RKE2 with its default CNI, Canal: kube-proxy as static pods, rke2-canal, rke2-coredns."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from netdoctor.lab.containers import LabInfo, NodeInfo
from netdoctor.lab.profiles import Pods, Profile, Seed, register
from netdoctor.lab.profiles.rancher import _base, kube_proxy_args, rancher_pod_cidr

Obj = dict[str, Any]
RKE2_DIR = "var/lib/rancher/rke2"
KUBERNETES_IMAGE = "rancher/hardened-kubernetes:v1.29.6-rke2r1-build20240619"
CALICO_IMAGE = "rancher/hardened-calico:v3.28.0-build20240625"
FLANNEL_IMAGE = "rancher/hardened-flannel:v0.25.4-build20240610"
COREDNS = "rke2-coredns-rke2-coredns"
CANAL = Pods("kube-system", "k8s-app", "canal")
KUBE_PROXY = Pods("kube-system", "component", "kube-proxy")
KUBE_DNS = Pods("kube-system", "k8s-app", "kube-dns")
CANAL_CONFLIST: Obj = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "calico", "log_level": "info", "datastore_type": "kubernetes",
         "nodename": "__KUBERNETES_NODE_NAME__", "mtu": 1450,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "usePodCidr"}]]},
         "policy": {"type": "k8s"},
         "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    ],
}
COREFILE = """.:53 {
    errors
    health  {
        lameduck 5s
    }
    ready
    kubernetes  cluster.local  cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus  0.0.0.0:9153
    forward  . /etc/resolv.conf
    cache  30
    loop
    reload
    loadbalance
}
"""


def kube_proxy_mirror(info: NodeInfo) -> Seed:
    """The mirror pod of the kube-proxy static pod RKE2 writes on ``info``
    (pkg/podtemplate: labels ``component``/``tier``, privileged, hostNetwork)."""
    args = [*kube_proxy_args("10.42.0.0/16", RKE2_DIR), f"--hostname-override={info.name}"]
    config_hash = hashlib.md5(json.dumps([info.name, args]).encode()).hexdigest()
    return ("", "pods", {
        "metadata": {
            "name": f"kube-proxy-{info.name}", "namespace": "kube-system",
            "labels": {"component": "kube-proxy", "tier": "control-plane"},
            "annotations": {"kubernetes.io/config.hash": config_hash,
                            "kubernetes.io/config.mirror": config_hash,
                            "kubernetes.io/config.seen": "2024-06-20T10:00:00.000000000Z",
                            "kubernetes.io/config.source": "file"},
            # The uid is filled in once the Node exists.
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": info.name,
                                 "uid": "", "controller": True}]},
        "spec": {
            "nodeName": info.name, "hostNetwork": True,
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "kube-proxy", "image": KUBERNETES_IMAGE,
                            "command": ["kube-proxy"], "args": args,
                            "env": [{"name": "FILE_HASH", "value": config_hash}],
                            "securityContext": {"privileged": True}}]}})


def canal_objects() -> list[Seed]:
    """The rke2-canal chart: ConfigMap rke2-canal-config and DaemonSet rke2-canal."""
    labels = {"k8s-app": "canal"}
    net_conf = {"Network": "10.42.0.0/16", "Backend": {"Type": "vxlan"}}
    cm = {"metadata": {"name": "rke2-canal-config", "namespace": "kube-system"},
          "data": {"typha_service_name": "none", "canal_iface": "", "canal_iface_regex": "",
                   "masquerade": "true", "veth_mtu": "1450",
                   "cni_network_config": json.dumps(CANAL_CONFLIST, indent=2),
                   "net-conf.json": json.dumps(net_conf, indent=2)}}
    env_ref = {"name": "NODENAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    calico = {"name": "calico-node", "image": CALICO_IMAGE, "command": ["start_runit"],
              "env": [{"name": "DATASTORE_TYPE", "value": "kubernetes"},
                      {"name": "USE_POD_CIDR", "value": "true"}, env_ref,
                      {"name": "CALICO_NETWORKING_BACKEND", "value": "none"},
                      {"name": "CLUSTER_TYPE", "value": "k8s,canal"}],
              "securityContext": {"privileged": True},
              "volumeMounts": [{"name": "var-lib-calico", "mountPath": "/var/lib/calico"},
                               {"name": "cni-net-dir", "mountPath": "/host/etc/cni/net.d"}]}
    flannel = {"name": "kube-flannel", "image": FLANNEL_IMAGE, "command": ["/opt/bin/flanneld"],
               "args": ["--ip-masq", "--kube-subnet-mgr", "--iptables-forward-rules=false"],
               "env": [{"name": "POD_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                       {"name": "POD_NAMESPACE",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
               "securityContext": {"privileged": False,
                                   "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
               "volumeMounts": [{"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"}]}
    ds = {"metadata": {"name": "rke2-canal", "namespace": "kube-system",
                       "labels": dict(labels)},
          "spec": {"selector": {"matchLabels": dict(labels)},
                   "template": {"metadata": {"labels": dict(labels)}, "spec": {
                       "hostNetwork": True, "containers": [calico, flannel],
                       "serviceAccountName": "canal", "terminationGracePeriodSeconds": 0,
                       "priorityClassName": "system-node-critical",
                       "nodeSelector": {"kubernetes.io/os": "linux"},
                       "tolerations": [{"effect": "NoSchedule", "operator": "Exists"},
                                       {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                       {"effect": "NoExecute", "operator": "Exists"}],
                       "volumes": [
                           {"name": "var-lib-calico", "hostPath": {"path": "/var/lib/calico"}},
                           {"name": "cni-net-dir", "hostPath": {"path": "/etc/cni/net.d"}},
                           {"name": "flannel-cfg", "configMap": {
                               "name": "rke2-canal-config",
                               "items": [{"key": "net-conf.json", "path": "net-conf.json"}]}}]}}}}
    return [("", "serviceaccounts", {"metadata": {"name": "canal", "namespace": "kube-system"}}),
            ("", "configmaps", cm), ("apps", "daemonsets", ds)]


def coredns_objects(dns_ip: str) -> list[Seed]:
    """The rke2-coredns chart (the coredns Helm chart under the release rke2-coredns)."""
    chart = {"app.kubernetes.io/instance": "rke2-coredns", "app.kubernetes.io/name":
             "rke2-coredns", "k8s-app": "kube-dns"}
    labels = {**chart, "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart":
              "rke2-coredns-1.29.002", "kubernetes.io/cluster-service": "true",
              "kubernetes.io/name": "CoreDNS"}
    container = {"name": "coredns", "image": "rancher/hardened-coredns:v1.11.1-build20240305",
                 "args": ["-conf", "/etc/coredns/Corefile"],
                 "ports": [{"name": "udp-53", "containerPort": 53, "protocol": "UDP"},
                           {"name": "tcp-53", "containerPort": 53, "protocol": "TCP"}],
                 "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                                   "initialDelaySeconds": 60, "periodSeconds": 10,
                                   "timeoutSeconds": 5, "failureThreshold": 5},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 10, "timeoutSeconds": 5},
                 "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns"}]}
    deploy = {"metadata": {"name": COREDNS, "namespace": "kube-system", "labels": labels},
              "spec": {"replicas": 1, "selector": {"matchLabels": dict(chart)},
                       "template": {"metadata": {"labels": dict(chart)}, "spec": {
                           "serviceAccountName": "coredns", "dnsPolicy": "Default",
                           "priorityClassName": "system-cluster-critical",
                           "nodeSelector": {"kubernetes.io/os": "linux"},
                           "tolerations": [
                               {"key": "CriticalAddonsOnly", "operator": "Exists"},
                               {"key": "node-role.kubernetes.io/control-plane",
                                "operator": "Exists", "effect": "NoSchedule"},
                               {"key": "node-role.kubernetes.io/etcd", "operator": "Exists",
                                "effect": "NoExecute"}],
                           "containers": [container],
                           "volumes": [{"name": "config-volume", "configMap": {
                               "name": COREDNS,
                               "items": [{"key": "Corefile", "path": "Corefile"}]}}]}}}}
    svc = {"metadata": {"name": COREDNS, "namespace": "kube-system", "labels": labels},
           "spec": {"clusterIP": dns_ip, "selector": dict(chart), "ports": [
               {"name": "udp-53", "port": 53, "protocol": "UDP", "targetPort": 53},
               {"name": "tcp-53", "port": 53, "protocol": "TCP", "targetPort": 53}]}}
    cm = {"metadata": {"name": COREDNS, "namespace": "kube-system", "labels": labels},
          "data": {"Corefile": COREFILE}}
    autoscaler_labels = {"app.kubernetes.io/instance": "rke2-coredns",
                         "app.kubernetes.io/name": "rke2-coredns-autoscaler",
                         "k8s-app": "rke2-coredns-autoscaler"}
    autoscaler = {"metadata": {"name": f"{COREDNS}-autoscaler", "namespace": "kube-system",
                               "labels": dict(autoscaler_labels)},
                  "spec": {"replicas": 1, "selector": {"matchLabels": dict(autoscaler_labels)},
                           "template": {"metadata": {"labels": dict(autoscaler_labels)},
                                        "spec": {"containers": [{
                                            "name": "autoscaler", "image":
                                            "rancher/hardened-cluster-autoscaler:"
                                            "v1.8.10-build20240124"}],
                                            "priorityClassName": "system-cluster-critical",
                                            "tolerations": [{"key": "CriticalAddonsOnly",
                                                             "operator": "Exists"}]}}}}
    return [("", "configmaps", cm), ("apps", "deployments", deploy), ("", "services", svc),
            ("apps", "deployments", autoscaler)]


def rke2_seed(lab: LabInfo) -> list[Seed]:
    """A fresh RKE2 cluster with Canal: the kube-proxy mirror pods come with the Nodes."""
    objs = _base(lab, "rke2")
    objs += [kube_proxy_mirror(n) for n in lab.nodes.values()]
    return objs + canal_objects() + coredns_objects(lab.dns_service_ip)


RKE2_CANAL = register(Profile(
    name="rke2-canal",
    summary="RKE2 with Canal (Flannel VXLAN + Calico CNI), kube-proxy as static pods, "
            "rke2-coredns",
    cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16", api_service_ip="10.43.0.1",
    dns_service_ip="10.43.0.10", node_pod_cidr=rancher_pod_cidr, seed=rke2_seed, dns=KUBE_DNS,
    per_node=(CANAL, KUBE_PROXY), kube_proxy=KUBE_PROXY,
    cni_daemonset=("kube-system", "rke2-canal"),
    cni_plugins=("bridge", "host-local", "loopback", "portmap", "bandwidth", "flannel",
                 "calico", "calico-ipam"),
    settled_files=("run/flannel/subnet.env", "etc/cni/net.d/10-canal.conflist"),
    agent_cni=("etc/cni/net.d/10-canal.conflist", CANAL_CONFLIST),
    unsupported={"cni-bridge-conflict": "Canal wires pods to routed cali veths, there is no "
                                        "cni0 bridge"},
))
