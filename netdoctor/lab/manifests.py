"""The objects a fresh kubeadm + Flannel cluster holds, as the lab seeds them."""

from __future__ import annotations

import json
from typing import Any

from netdoctor.lab.containers import LabInfo, NodeInfo

Obj = dict[str, Any]

KUBERNETES_VERSION = "v1.29.6"
IMAGES = {
    "kube-proxy": f"registry.k8s.io/kube-proxy:{KUBERNETES_VERSION}",
    "coredns": "registry.k8s.io/coredns/coredns:v1.11.1",
    "flannel": "docker.io/flannel/flannel:v0.25.5",
}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "kube-flannel")
TOLERATE_ALL = [{"operator": "Exists"}]

COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""

KUBE_PROXY_CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: {cluster_cidr}
healthzBindAddress: 0.0.0.0:10256
iptables:
  minSyncPeriod: 1s
  syncPeriod: 30s
metricsBindAddress: 127.0.0.1:10249
mode: iptables
"""

KUBE_PROXY_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: https://192.168.4.10:6443
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
"""

FLANNEL_NET_CONF: dict[str, Any] = {
    "Network": "10.244.0.0/16",
    "EnableNFTables": False,
    "Backend": {"Type": "vxlan"},
}


def node(info: NodeInfo) -> Obj:
    """A Node as kubeadm registers it (Ready is reported by the kubelet afterwards)."""
    control_plane = info.index == 0
    labels = {
        "kubernetes.io/hostname": info.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    spec: Obj = {"podCIDR": info.pod_cidr, "podCIDRs": [info.pod_cidr]}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    capacity = {
        "cpu": "2",
        "memory": "4026800Ki",
        "pods": "110",
        "ephemeral-storage": "20463184Ki",
        "hugepages-2Mi": "0",
    }
    return {
        "metadata": {
            "name": info.name,
            "labels": labels,
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": info.internal_ip},
                {"type": "Hostname", "address": info.name},
            ],
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "machineID": "",
                "systemUUID": "",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kernelVersion": "6.1.0-18-amd64",
                "kubeProxyVersion": KUBERNETES_VERSION,
                "kubeletVersion": KUBERNETES_VERSION,
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
            },
        },
    }


def _daemonset(
    name: str, ns: str, labels: dict[str, str], containers: list[Obj], **spec: Any
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": containers, **spec},
            },
        },
    }


def kube_proxy(cluster_cidr: str = FLANNEL_NET_CONF["Network"]) -> list[tuple[str, str, Obj]]:
    """kube-proxy's ConfigMap and DaemonSet (kubeadm's shape)."""
    labels = {"k8s-app": "kube-proxy"}
    container = {
        "name": "kube-proxy",
        "image": IMAGES["kube-proxy"],
        "command": [
            "/usr/local/bin/kube-proxy",
            "--config=/var/lib/kube-proxy/config.conf",
            "--hostname-override=$(NODE_NAME)",
        ],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "kube-proxy", "mountPath": "/var/lib/kube-proxy"}],
    }
    ds = _daemonset(
        "kube-proxy",
        "kube-system",
        labels,
        [container],
        hostNetwork=True,
        priorityClassName="system-node-critical",
        serviceAccountName="kube-proxy",
        nodeSelector={"kubernetes.io/os": "linux"},
        tolerations=TOLERATE_ALL,
        volumes=[{"name": "kube-proxy", "configMap": {"name": "kube-proxy"}}],
    )
    cm = {
        "metadata": {
            "name": "kube-proxy",
            "namespace": "kube-system",
            "labels": {"app": "kube-proxy"},
        },
        "data": {"config.conf": KUBE_PROXY_CONFIG.format(cluster_cidr=cluster_cidr),
                 "kubeconfig.conf": KUBE_PROXY_KUBECONFIG},
    }
    return [("", "configmaps", cm), ("apps", "daemonsets", ds)]


def flannel(network: str = FLANNEL_NET_CONF["Network"]) -> list[tuple[str, str, Obj]]:
    """Flannel's ConfigMap and DaemonSet, as in the upstream kube-flannel.yml."""
    labels = {"app": "flannel", "k8s-app": "flannel", "tier": "node"}
    container = {
        "name": "kube-flannel",
        "image": IMAGES["flannel"],
        "command": ["/opt/bin/flanneld"],
        "args": ["--ip-masq", "--kube-subnet-mgr"],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "securityContext": {"privileged": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
        "volumeMounts": [
            {"name": "run", "mountPath": "/run/flannel"},
            {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
        ],
    }
    ds = _daemonset(
        "kube-flannel-ds",
        "kube-flannel",
        labels,
        [container],
        hostNetwork=True,
        priorityClassName="system-node-critical",
        serviceAccountName="flannel",
        tolerations=[{"operator": "Exists", "effect": "NoSchedule"}],
        volumes=[
            {"name": "run", "hostPath": {"path": "/run/flannel"}},
            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
        ],
    )
    cni_conf = {
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    cm = {
        "metadata": {
            "name": "kube-flannel-cfg",
            "namespace": "kube-flannel",
            "labels": {"app": "flannel", "tier": "node"},
        },
        "data": {
            "cni-conf.json": json.dumps(cni_conf, indent=2),
            "net-conf.json": json.dumps({**FLANNEL_NET_CONF, "Network": network}, indent=2),
        },
    }
    return [("", "configmaps", cm), ("apps", "daemonsets", ds)]


def coredns(replicas: int = 1, cluster_ip: str = "10.96.0.10") -> list[tuple[str, str, Obj]]:
    """CoreDNS's ConfigMap, Deployment and the kube-dns Service (kubeadm's shape)."""
    labels = {"k8s-app": "kube-dns"}
    container = {
        "name": "coredns",
        "image": IMAGES["coredns"],
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": 8080},
            "initialDelaySeconds": 60,
            "timeoutSeconds": 5,
            "failureThreshold": 5,
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
    }
    deploy = {
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [container],
                    "dnsPolicy": "Default",
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    ],
                    "volumes": [
                        {
                            "name": "config-volume",
                            "configMap": {
                                "name": "coredns",
                                "items": [{"key": "Corefile", "path": "Corefile"}],
                            },
                        }
                    ],
                },
            },
        },
    }
    cm = {
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": COREFILE},
    }
    svc = {
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "clusterIP": cluster_ip,
            "selector": dict(labels),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
        },
    }
    return [("", "configmaps", cm), ("apps", "deployments", deploy), ("", "services", svc)]


def api_service(lab: LabInfo) -> list[tuple[str, str, Obj]]:
    """``default/kubernetes`` and the endpoints the API server maintains for it."""
    port = {"name": "https", "port": lab.apiserver_port, "protocol": "TCP"}
    svc = {
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "clusterIP": lab.api_service_ip,
            "ports": [
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": lab.apiserver_port}
            ],
        },
    }
    ep = {
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{"addresses": [{"ip": lab.apiserver_ip}], "ports": [port]}],
    }
    eps = {
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [lab.apiserver_ip], "conditions": {"ready": True}}],
        "ports": [port],
    }
    return [
        ("", "services", svc),
        ("", "endpoints", ep),
        ("discovery.k8s.io", "endpointslices", eps),
    ]


def service_accounts() -> list[tuple[str, str, Obj]]:
    """The service accounts the system pods name."""
    out = [
        ("", "serviceaccounts", {"metadata": {"name": "default", "namespace": ns}})
        for ns in SYSTEM_NAMESPACES
    ]
    for ns, name in (
        ("kube-system", "kube-proxy"),
        ("kube-system", "coredns"),
        ("kube-flannel", "flannel"),
    ):
        out.append(("", "serviceaccounts", {"metadata": {"name": name, "namespace": ns}}))
    return out


def cluster(lab: LabInfo) -> list[tuple[str, str, Obj]]:
    """Everything seeded at ``lab up``, in creation order: (group, plural, object)."""
    objs: list[tuple[str, str, Obj]] = [
        ("", "namespaces", {"metadata": {"name": ns}}) for ns in SYSTEM_NAMESPACES
    ]
    objs += [("", "nodes", node(n)) for n in lab.nodes.values()]
    objs += service_accounts() + api_service(lab) + flannel(lab.cluster_cidr)
    objs += kube_proxy(lab.cluster_cidr) + coredns(cluster_ip=lab.dns_service_ip)
    return objs
