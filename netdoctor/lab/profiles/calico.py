"""kubeadm with Calico installed by the Tigera operator (calico-system), BGP, no overlay."""

from __future__ import annotations

from typing import Any

from netdoctor.lab import manifests
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.profiles import Pods, Profile, Seed, register
from netdoctor.lab.profiles.kubeadm import KUBE_DNS, KUBE_PROXY, kubeadm_pod_cidr

Obj = dict[str, Any]
CALICO_VERSION = "v3.28.0"
CALICO_NODE = Pods("calico-system", "k8s-app", "calico-node")
CALICO_CONFLIST: Obj = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "calico", "datastore_type": "kubernetes", "mtu": 0,
         "nodename_file_optional": False, "log_level": "Info",
         "log_file_path": "/var/log/calico/cni/cni.log",
         "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false"},
         "container_settings": {"allow_ip_forwarding": False},
         "policy": {"type": "k8s"},
         "kubernetes": {"k8s_api_root": "https://10.96.0.1:443",
                        "kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}


def calico_block(index: int) -> str:
    """The /26 IPAM block node ``index`` holds an affinity for: anywhere in the pool, never
    the /24 kube-controller-manager wrote into its spec.podCIDR."""
    third = 64 + (index * 37) % 190
    return f"10.244.{third}.{64 * (index % 4)}/26"


def _deployment(name: str, ns: str, image: str, **pod: Any) -> Seed:
    """A Deployment the operator makes: ``k8s-app`` and ``app.kubernetes.io/name`` labels."""
    labels = {"k8s-app": name, "app.kubernetes.io/name": name}
    return ("apps", "deployments", {
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": name}},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {
                     "containers": [{"name": name, "image": image}],
                     "serviceAccountName": name, "tolerations": [
                         {"key": "CriticalAddonsOnly", "operator": "Exists"},
                         {"key": "node-role.kubernetes.io/control-plane",
                          "effect": "NoSchedule"}], **pod}}}})


def calico_node() -> Seed:
    """The operator's calico-node DaemonSet (calico-system, k8s-app=calico-node)."""
    labels = {"k8s-app": "calico-node", "app.kubernetes.io/name": "calico-node"}
    env: list[Obj] = [{"name": k, "value": v} for k, v in (
        ("DATASTORE_TYPE", "kubernetes"), ("WAIT_FOR_DATASTORE", "true"),
        ("CLUSTER_TYPE", "k8s,operator,bgp"), ("CALICO_DISABLE_FILE_LOGGING", "false"),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"), ("FELIX_HEALTHENABLED", "true"),
        ("CALICO_NETWORKING_BACKEND", "bird"), ("IP", "autodetect"),
        ("IP_AUTODETECTION_METHOD", "first-found"))]
    env.append({"name": "NODENAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    container = {
        "name": "calico-node", "image": f"docker.io/calico/node:{CALICO_VERSION}", "env": env,
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "var-lib-calico", "mountPath": "/var/lib/calico"},
                         {"name": "cni-net-dir", "mountPath": "/host/etc/cni/net.d"}]}
    return ("apps", "daemonsets", {
        "metadata": {"name": "calico-node", "namespace": "calico-system",
                     "labels": dict(labels)},
        "spec": {"selector": {"matchLabels": {"k8s-app": "calico-node"}},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {
                     "containers": [container], "hostNetwork": True,
                     "serviceAccountName": "calico-node",
                     "priorityClassName": "system-node-critical",
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                     {"operator": "Exists", "effect": "NoSchedule"},
                                     {"operator": "Exists", "effect": "NoExecute"}],
                     "volumes": [{"name": "var-lib-calico",
                                  "hostPath": {"path": "/var/lib/calico"}},
                                 {"name": "cni-net-dir",
                                  "hostPath": {"path": "/etc/cni/net.d"}}]}}}})


def calico_seed(lab: LabInfo) -> list[Seed]:
    """kubeadm's objects without Flannel, plus the operator and its calico-system."""
    objs = [o for o in manifests.cluster(lab)
            if o[2]["metadata"].get("namespace") != "kube-flannel"
            and o[2]["metadata"].get("name") != "kube-flannel"]
    namespaces = ("tigera-operator", "calico-system")
    objs += [("", "namespaces", {"metadata": {"name": ns, "labels": {"name": ns}}})
             for ns in namespaces]
    objs += [("", "serviceaccounts", {"metadata": {"name": name, "namespace": ns}})
             for ns, name in (("tigera-operator", "default"), ("tigera-operator",
                                                               "tigera-operator"),
                              ("calico-system", "default"), ("calico-system", "calico-node"),
                              ("calico-system", "calico-kube-controllers"),
                              ("calico-system", "calico-typha"))]
    objs.append(_deployment("tigera-operator", "tigera-operator", "quay.io/tigera/operator:"
                            "v1.34.0", hostNetwork=True))
    objs.append(calico_node())
    objs.append(_deployment("calico-kube-controllers", "calico-system",
                            f"docker.io/calico/kube-controllers:{CALICO_VERSION}"))
    objs.append(_deployment("calico-typha", "calico-system",
                            f"docker.io/calico/typha:{CALICO_VERSION}", hostNetwork=True))
    return objs


CALICO = register(Profile(
    name="calico",
    summary="kubeadm 1.29 with Calico (operator, calico-system): BGP-routed IPAM blocks, "
            "no overlay on one L2 segment; kube-proxy DaemonSet",
    cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", api_service_ip="10.96.0.1",
    dns_service_ip="10.96.0.10", node_pod_cidr=kubeadm_pod_cidr, seed=calico_seed,
    dns=KUBE_DNS, per_node=(CALICO_NODE, KUBE_PROXY), kube_proxy=KUBE_PROXY,
    cni_daemonset=("calico-system", "calico-node"),
    cni_plugins=("bridge", "host-local", "loopback", "portmap", "bandwidth", "calico",
                 "calico-ipam"),
    settled_files=("var/lib/calico/nodename", "etc/cni/net.d/10-calico.conflist"),
    peer_routes=True,
    ipam_range=calico_block, agent_cni=("etc/cni/net.d/10-calico.conflist", CALICO_CONFLIST),
    unsupported={"cni-bridge-conflict": "Calico wires pods to routed veths, there is no "
                                        "cni0 bridge",
                 **dict.fromkeys(("vxlan-fdb-stale", "neigh-stale", "firewall-vxlan",
                                  "underlay-vxlan-drop"),
                                 "Calico routes pod blocks over the underlay (BGP): no VXLAN "
                                 "between nodes")},
))
