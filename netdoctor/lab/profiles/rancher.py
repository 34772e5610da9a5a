"""k3s (Flannel and kube-proxy embedded in the node agent) and RKE2 with Canal."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from netdoctor.lab import manifests
from netdoctor.lab.containers import LabInfo, NodeInfo
from netdoctor.lab.profiles import NodeTask, Pods, Profile, Seed, register

Obj = dict[str, Any]
K3S_VERSION = "v1.29.6+k3s2"
RKE2_VERSION = "v1.29.6+rke2r1"
K3S_DIR = "var/lib/rancher/k3s"
K3S_CNI_DIR = f"{K3S_DIR}/agent/etc/cni/net.d"
# k3s is a multicall binary; its CNI plugins are symlinks in the data dir's bin.
K3S_CNI_BIN = f"{K3S_DIR}/data/current/bin"
K3S_FLANNEL_CONFLIST: Obj = {
    "name": "cbr0",
    "cniVersion": "1.0.0",
    "plugins": [
        {"type": "flannel",
         "delegate": {"hairpinMode": True, "forceAddress": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    ],
}
K3S_COREFILE = """.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
"""
KUBE_DNS = Pods("kube-system", "k8s-app", "kube-dns")


def rancher_pod_cidr(index: int) -> str:
    """The /24 per node from k3s's and RKE2's default cluster CIDR 10.42.0.0/16."""
    return f"10.42.{index}.0/24"


def _node_args(info: NodeInfo, port: int) -> list[str]:
    return ["server"] if info.index == 0 else \
        ["agent", "--server", f"https://192.168.4.10:{port}", "--token", "********"]


def k3s_node(info: NodeInfo, program: str = "k3s") -> Obj:
    """A Node as the k3s (or RKE2) agent registers it: labels, ``<program>.io/*``
    annotations, no taint on the server."""
    node = manifests.node(info)
    meta, spec = node["metadata"], node["spec"]
    labels = {k: v for k, v in meta["labels"].items() if not k.startswith("node-role.")}
    labels.pop("node.kubernetes.io/exclude-from-external-load-balancers", None)
    labels.update({"beta.kubernetes.io/instance-type": program,
                   "node.kubernetes.io/instance-type": program})
    if info.index == 0:
        labels.update({"node-role.kubernetes.io/control-plane": "true",
                       "node-role.kubernetes.io/master": "true"})
        if program == "rke2":  # RKE2 servers run embedded etcd
            labels["node-role.kubernetes.io/etcd"] = "true"
    meta["labels"] = labels
    port = 6443 if program == "k3s" else 9345
    args, env = json.dumps(_node_args(info, port), separators=(",", ":")), "{}"
    digest = base64.b32encode(hashlib.sha256((args + env).encode()).digest()).decode()
    meta["annotations"] = {
        "alpha.kubernetes.io/provided-node-ip": info.internal_ip,
        f"{program}.io/hostname": info.name,
        f"{program}.io/internal-ip": info.internal_ip,
        f"{program}.io/node-args": args,
        f"{program}.io/node-config-hash": digest,
        f"{program}.io/node-env": env,
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    spec.pop("taints", None)
    spec["providerID"] = f"{program}://{info.name}"
    version = K3S_VERSION if program == "k3s" else RKE2_VERSION
    node["status"]["nodeInfo"].update({
        "kubeletVersion": version, "kubeProxyVersion": version,
        "containerRuntimeVersion": f"containerd://1.7.17-{program}1"})
    return node


def k3s_coredns(lab: LabInfo) -> list[Seed]:
    """k3s's packaged CoreDNS (manifests/coredns.yaml): Deployment coredns, Service kube-dns."""
    objs = manifests.coredns(cluster_ip=lab.dns_service_ip)
    out: list[Seed] = []
    hosts = "".join(f"{n.internal_ip} {n.name}\n" for n in lab.nodes.values())
    for group, plural, obj in objs:
        if plural == "configmaps":
            obj["data"] = {"Corefile": K3S_COREFILE, "NodeHosts": hosts}
        elif plural == "deployments":
            obj["metadata"]["labels"]["kubernetes.io/name"] = "CoreDNS"
            obj["spec"]["strategy"] = {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": 1}}
            pod = obj["spec"]["template"]["spec"]
            container = pod["containers"][0]
            container["image"] = "rancher/mirrored-coredns-coredns:1.10.1"
            container["livenessProbe"].update({"periodSeconds": 10, "timeoutSeconds": 1,
                                               "failureThreshold": 3})
            container["readinessProbe"].update({"periodSeconds": 2, "timeoutSeconds": 1})
            pod["tolerations"] = [
                {"key": "CriticalAddonsOnly", "operator": "Exists"},
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                 "effect": "NoSchedule"},
                {"key": "node-role.kubernetes.io/master", "operator": "Exists",
                 "effect": "NoSchedule"}]
            pod["volumes"][0]["configMap"]["items"] = [
                {"key": "Corefile", "path": "Corefile"},
                {"key": "NodeHosts", "path": "NodeHosts"}]
        elif plural == "services":
            obj["metadata"]["annotations"] = {"prometheus.io/port": "9153",
                                              "prometheus.io/scrape": "true"}
        out.append((group, plural, obj))
    return out


def _base(lab: LabInfo, program: str) -> list[Seed]:
    """Namespaces, Nodes, default ServiceAccounts, CoreDNS's ServiceAccount."""
    namespaces = ("default", "kube-system", "kube-public", "kube-node-lease")
    objs: list[Seed] = [("", "namespaces", {"metadata": {"name": ns}}) for ns in namespaces]
    objs += [("", "nodes", k3s_node(n, program)) for n in lab.nodes.values()]
    objs += [("", "serviceaccounts", {"metadata": {"name": "default", "namespace": ns}})
             for ns in namespaces]
    objs.append(("", "serviceaccounts", {"metadata": {"name": "coredns",
                                                      "namespace": "kube-system"}}))
    return objs + manifests.api_service(lab)


def k3s_seed(lab: LabInfo) -> list[Seed]:
    """Everything a fresh k3s cluster shows: no Flannel or kube-proxy objects at all."""
    return _base(lab, "k3s") + k3s_coredns(lab)


def kube_proxy_args(cluster_cidr: str, data_dir: str = K3S_DIR) -> tuple[str, ...]:
    """The flags k3s's agent hands kube-proxy (kubeProxyArgs in pkg/daemons/agent); RKE2,
    built on that agent, puts the same flags into its static pod."""
    return (f"--cluster-cidr={cluster_cidr}", "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-close-wait=0s", "--conntrack-tcp-timeout-established=0s",
            "--healthz-bind-address=127.0.0.1",
            f"--kubeconfig=/{data_dir}/agent/kubeproxy.kubeconfig", "--proxy-mode=iptables")


K3S = register(Profile(
    name="k3s",
    summary="k3s: Flannel VXLAN and kube-proxy inside the k3s agent (no pods), CoreDNS Deployment",
    cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16", api_service_ip="10.43.0.1",
    dns_service_ip="10.43.0.10", node_pod_cidr=rancher_pod_cidr, seed=k3s_seed, dns=KUBE_DNS,
    node_tasks=(NodeTask("flannel", "flannel/flannel:embedded"),
                NodeTask("kube-proxy", "kube-proxy:embedded",
                         kube_proxy_args("10.42.0.0/16"))),
    cni_conf_dir=K3S_CNI_DIR, cni_bin_dir=K3S_CNI_BIN,
    cni_plugins=("bridge", "host-local", "loopback", "portmap", "flannel", "bandwidth"),
    settled_files=("run/flannel/subnet.env", f"{K3S_CNI_DIR}/10-flannel.conflist"),
    flannel_cni=(f"{K3S_CNI_DIR}/10-flannel.conflist", K3S_FLANNEL_CONFLIST),
))
