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
    flannel_cni=(CONFLIST, FLANNEL_CONFLIST), peer_routes=True,
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
    flannel_cni=(CONFLIST, FLANNEL_CONFLIST), peer_routes=True,
))


OPENSHIFT_DNS = Pods("openshift-dns", "dns.operator.openshift.io/daemonset-dns", "default")
OPENSHIFT_COREFILE = """.:5353 {
    bufsize 1232
    errors
    log . {
        class error
    }
    health {
        lameduck 20s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    prometheus 127.0.0.1:9153
    forward . /etc/resolv.conf {
        policy sequential
    }
    cache 900 {
        denial 9984 30
    }
    reload
}
hostname.bind:5353 {
    chaos
}
"""


def openshift_pod_cidr(index: int) -> str:
    """OpenShift's default cluster network 10.128.0.0/14 with hostPrefix 23."""
    return f"10.128.{2 * index}.0/23"


def openshift_dns_objects(dns_ip: str) -> list[Seed]:
    """The DNS operator's operand (cluster-dns-operator pkg/manifests/assets/dns and
    pkg/operator/controller): DaemonSet, Service and ConfigMap ``dns-default`` in
    openshift-dns, and the operator's Deployment."""
    owning = {"dns.operator.openshift.io/owning-dns": "default"}
    selector = {OPENSHIFT_DNS.key: OPENSHIFT_DNS.value}
    dns = {"name": "dns", "image": "quay.io/openshift/origin-coredns:4.16",
           "command": ["coredns"], "args": ["-conf", "/etc/coredns/Corefile"],
           "terminationMessagePolicy": "FallbackToLogsOnError",
           "ports": [{"containerPort": 5353, "name": "dns", "protocol": "UDP"},
                     {"containerPort": 5353, "name": "dns-tcp", "protocol": "TCP"}],
           "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                              "initialDelaySeconds": 10, "periodSeconds": 3,
                              "successThreshold": 1, "failureThreshold": 3,
                              "timeoutSeconds": 3},
           "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                             "initialDelaySeconds": 60, "timeoutSeconds": 5,
                             "successThreshold": 1, "failureThreshold": 5},
           "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns",
                             "readOnly": True}]}
    rbac_proxy = {"name": "kube-rbac-proxy",
                  "image": "quay.io/openshift/origin-kube-rbac-proxy:4.16",
                  "ports": [{"containerPort": 9154, "name": "metrics"}]}
    ds = {"metadata": {"name": "dns-default", "namespace": "openshift-dns",
                       "labels": dict(owning)},
          "spec": {"selector": {"matchLabels": dict(selector)}, "minReadySeconds": 9,
                   "template": {"metadata": {"labels": dict(selector), "annotations": {
                       "target.workload.openshift.io/management":
                       '{"effect": "PreferredDuringScheduling"}'}}, "spec": {
                       "serviceAccountName": "dns", "priorityClassName": "system-node-critical",
                       "containers": [dns, rbac_proxy], "dnsPolicy": "Default",
                       "nodeSelector": {"kubernetes.io/os": "linux"},
                       "tolerations": [{"key": "node-role.kubernetes.io/master",
                                        "operator": "Exists"}],
                       "volumes": [{"name": "config-volume", "configMap": {
                           "name": "dns-default",
                           "items": [{"key": "Corefile", "path": "Corefile"}]}}]}}}}
    svc = {"metadata": {"name": "dns-default", "namespace": "openshift-dns",
                        "labels": dict(owning), "annotations": {
                            "service.beta.openshift.io/serving-cert-secret-name":
                            "dns-default-metrics-tls"}},
           "spec": {"clusterIP": dns_ip, "selector": dict(selector), "ports": [
               {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
               {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
               {"name": "metrics", "port": 9154, "targetPort": "metrics",
                "protocol": "TCP"}]}}
    cm = {"metadata": {"name": "dns-default", "namespace": "openshift-dns",
                       "labels": dict(owning)}, "data": {"Corefile": OPENSHIFT_COREFILE}}
    operator = {"metadata": {"name": "dns-operator", "namespace": "openshift-dns-operator",
                             "labels": {"name": "dns-operator"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "dns-operator"}},
                         "template": {"metadata": {"labels": {"name": "dns-operator"}},
                                      "spec": {"serviceAccountName": "dns-operator",
                                               "containers": [{
                                                   "name": "dns-operator", "image":
                                                   "quay.io/openshift/origin-cluster-dns-"
                                                   "operator:4.16"}],
                                               "tolerations": [{
                                                   "key": "node-role.kubernetes.io/master",
                                                   "operator": "Exists"}]}}}}
    objs: list[Seed] = [("", "namespaces", {"metadata": {"name": ns}})
                        for ns in ("openshift-dns", "openshift-dns-operator")]
    objs += [("", "serviceaccounts", {"metadata": {"name": n, "namespace": ns}})
             for ns, n in (("openshift-dns", "default"), ("openshift-dns", "dns"),
                           ("openshift-dns-operator", "default"),
                           ("openshift-dns-operator", "dns-operator"))]
    return [*objs, ("", "configmaps", cm), ("apps", "daemonsets", ds), ("", "services", svc),
            ("apps", "deployments", operator)]


def openshift_dns_seed(lab: LabInfo) -> list[Seed]:
    """kubeadm + Flannel with OpenShift's addressing and its DNS operand instead of CoreDNS's
    Deployment and kube-dns; masters tainted and labelled as OpenShift does."""
    out: list[Seed] = []
    for group, plural, obj in manifests.cluster(lab):
        meta = obj["metadata"]
        if meta.get("namespace") == "kube-system" and (
                meta.get("name") in ("coredns", "kube-dns")):
            continue
        if plural == "nodes" and "node-role.kubernetes.io/control-plane" in meta["labels"]:
            meta["labels"]["node-role.kubernetes.io/master"] = ""
            obj["spec"]["taints"] = [{"key": "node-role.kubernetes.io/master",
                                      "effect": "NoSchedule"}]
        out.append((group, plural, obj))
    return out + openshift_dns_objects(lab.dns_service_ip)


OPENSHIFT = register(Profile(
    name="openshift-dns",
    summary="OpenShift's DNS shape (DaemonSet and Service dns-default in openshift-dns, "
            "172.30.0.0/16) on kubeadm's Flannel and kube-proxy",
    cluster_cidr="10.128.0.0/14", service_cidr="172.30.0.0/16", api_service_ip="172.30.0.1",
    dns_service_ip="172.30.0.10", node_pod_cidr=openshift_pod_cidr, seed=openshift_dns_seed,
    dns=OPENSHIFT_DNS, per_node=(FLANNEL, KUBE_PROXY), kube_proxy=KUBE_PROXY,
    cni_daemonset=("kube-flannel", "kube-flannel-ds"), settled_files=FLANNEL_FILES,
    flannel_cni=(CONFLIST, FLANNEL_CONFLIST), peer_routes=True,
))
