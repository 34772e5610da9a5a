"""Which object plays which role: the CNI's agents, kube-proxy, the cluster DNS.

Pure rules over listed API objects, one per role, each written for the class of cluster
rather than one distribution: a component is recognised by its images, labels and container
names in any namespace, never by a single guessed name. A role that no object plays is a
state too ("absent by design" when something else does the job).

Example:
    >>> image_name("quay.io/cilium/cilium:v1.16.1@sha256:abc")
    'cilium'
    >>> cni_family_of({"metadata": {"name": "rke2-canal", "namespace": "kube-system"},
    ...     "spec": {"template": {"spec": {"containers": [
    ...         {"name": "calico-node", "image": "rancher/hardened-calico:v3.28.1"},
    ...         {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.25.6"}]}}}})
    'canal'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
KUBE_PROXY_LABELS = (("k8s-app", "kube-proxy"), ("component", "kube-proxy"))
DNS_LABEL = ("k8s-app", "kube-dns")

CNI_PLUGIN_TYPES: Mapping[str, tuple[str, ...]] = {
    "flannel": ("flannel",),
    "canal": ("calico", "flannel"),
    "calico": ("calico",),
    "cilium": ("cilium-cni",),
    "kindnet": ("ptp",),
    "aws-vpc-cni": ("aws-cni",),
    "weave": ("weave-net",),
    "antrea": ("antrea",),
    "kube-router": ("bridge",),
    "ovn-kubernetes": ("ovn-k8s-cni-overlay",),
}
"""The ``type`` each CNI writes as the main plugin of its own CNI config."""



def main_types(cni: str) -> tuple[str, ...]:
    """The plugin types of ``cni``'s own config (the name itself for a CNI not listed)."""
    return CNI_PLUGIN_TYPES.get(cni, (cni,))


def family_of_types(types: Iterable[str]) -> str:
    """The CNI whose own config has these plugin types (``""`` when none matches)."""
    found = set(types)
    if {"calico", "flannel"} <= found:
        return "canal"
    return next((cni for cni, own in CNI_PLUGIN_TYPES.items()
                 if cni not in ("canal", "kube-router") and own[0] in found), "")


META_PLUGIN_TYPES = frozenset({"multus", "multus-shim"})
"""CNI plugins that call another CNI's config (they sort first on purpose)."""

PODCIDR_IPAM = frozenset({"flannel", "canal", "kindnet", "bridge", "kube-router"})
"""CNIs whose IPAM hands out addresses from the node's ``spec.podCIDR`` (host-local)."""


@dataclass(frozen=True)
class AgentRule:
    """How one CNI's node agent is recognised."""

    family: str
    containers: tuple[str, ...]
    images: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]


AGENT_RULES: tuple[AgentRule, ...] = (
    AgentRule("cilium", ("cilium-agent",), ("cilium",), (("k8s-app", "cilium"),)),
    AgentRule("calico", ("calico-node",), ("node", "calico-node", "hardened-calico",
                                           "mirrored-calico-node"),
              (("k8s-app", "calico-node"),)),
    AgentRule("flannel", ("kube-flannel",), ("flannel", "hardened-flannel",
                                             "mirrored-flannelcni-flannel"),
              (("app", "flannel"), ("k8s-app", "flannel"))),
    AgentRule("kindnet", ("kindnet-cni",), ("kindnetd",), (("app", "kindnet"),)),
    AgentRule("aws-vpc-cni", ("aws-node",), ("amazon-k8s-cni",), (("k8s-app", "aws-node"),)),
    AgentRule("weave", ("weave",), ("weave-kube",), (("name", "weave-net"),)),
    AgentRule("antrea", ("antrea-agent",), ("antrea-agent-ubuntu", "antrea-ubuntu"),
              (("component", "antrea-agent"),)),
    AgentRule("kube-router", ("kube-router",), ("kube-router",), (("k8s-app", "kube-router"),)),
    AgentRule("ovn-kubernetes", ("ovnkube-node", "ovnkube-controller"), (),
              (("app", "ovnkube-node"),)),
)
META_RULE = AgentRule("multus", ("kube-multus",), ("multus-cni", "multus-cni-thick", "multus"),
                      (("app", "multus"), ("name", "multus")))


def image_name(image: str) -> str:
    """The repository's last path component, without tag or digest."""
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    tmpl: Mapping[str, Any] = (obj.get("spec") or {}).get("template") or {}
    return tmpl


def containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod template's (or pod's) containers."""
    spec = _template(obj).get("spec") or obj.get("spec") or {}
    found: list[Mapping[str, Any]] = spec.get("containers") or []
    return found


def template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """The pod template's labels (empty for objects without a template)."""
    return dict((_template(obj).get("metadata") or {}).get("labels") or {})


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's own labels."""
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _is_calico_image(image: str) -> bool:
    # calico/node, rancher/mirrored-calico-node, rancher/hardened-calico: "node" alone is
    # too common a name, so it counts only under a calico path.
    name = image_name(image)
    return "calico" in name or (name == "node" and "calico" in image)


def matches(rule: AgentRule, obj: Mapping[str, Any]) -> bool:
    """Whether a DaemonSet is this agent (by container name, image or label)."""
    conts = containers(obj)
    names = {str(c.get("name", "")) for c in conts}
    images = [str(c.get("image", "")) for c in conts]
    if rule.family == "calico":
        by_image = any(_is_calico_image(i) for i in images)
    elif rule.family == "flannel":
        by_image = any("flannel" in image_name(i) and "cni-plugin" not in image_name(i)
                       for i in images)
    else:
        by_image = any(image_name(i) in rule.images for i in images)
    tagged = labels(obj).items() | template_labels(obj).items()
    return bool(names & set(rule.containers)) or by_image or bool(set(rule.labels) & tagged)


def cni_family_of(ds: Mapping[str, Any]) -> str:
    """The CNI a DaemonSet is the agent of (``canal`` for calico + flannel), or ``""``."""
    hits = [r.family for r in AGENT_RULES if matches(r, ds)]
    if "calico" in hits and ("flannel" in hits or "canal" in ds["metadata"]["name"]):
        return "canal"
    return hits[0] if hits else ""


@dataclass(frozen=True)
class CniAgents:
    """The CNI's agent DaemonSets and meta-plugins found in the cluster."""

    family: str
    agents: tuple[Mapping[str, Any], ...]
    meta: tuple[Mapping[str, Any], ...]


def find_cni_agents(daemonsets: Iterable[Mapping[str, Any]]) -> CniAgents:
    """The CNI family from its agents (first found wins), and the meta-plugins (Multus)."""
    family, agents, meta = "", [], []
    for ds in daemonsets:
        if matches(META_RULE, ds):
            meta.append(ds)
            continue
        found = cni_family_of(ds)
        if found and (not family or found == family):
            family = family or found
            agents.append(ds)
    return CniAgents(family, tuple(agents), tuple(meta))


def is_mirror_pod(pod: Mapping[str, Any]) -> bool:
    """A static pod's mirror: the kubelet's annotation, or owned by its Node."""
    meta = pod.get("metadata") or {}
    return MIRROR_ANNOTATION in (meta.get("annotations") or {}) or any(
        r.get("kind") == "Node" for r in meta.get("ownerReferences") or [])


def kube_proxy_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods labelled as kube-proxy (``k8s-app`` or ``component``), any namespace."""
    return [p for p in pods if set(KUBE_PROXY_LABELS) & labels(p).items()]


def is_kube_proxy_ds(ds: Mapping[str, Any]) -> bool:
    """A DaemonSet running kube-proxy (label, template label or image)."""
    tagged = labels(ds).items() | template_labels(ds).items()
    return bool(set(KUBE_PROXY_LABELS) & tagged) or any(
        image_name(str(c.get("image", ""))) == "kube-proxy" for c in containers(ds))


def replacement(daemonsets: Sequence[Mapping[str, Any]],
                configmaps: Iterable[Mapping[str, Any]]) -> str:
    """What replaces kube-proxy, with where it says so, or ``""``.

    Cilium: ``kube-proxy-replacement`` ``true``/``strict`` in its ConfigMap ``cilium-config``
    (or the agent's flag). Calico eBPF: ``FELIX_BPFENABLED=true`` on calico-node (the
    operator and the manifests both set it when the BPF data plane is on).
    """
    for cm in configmaps:
        data = cm.get("data") or {}
        value = str(data.get("kube-proxy-replacement", "")).lower()
        if cm["metadata"]["name"] == "cilium-config" and value in ("true", "strict"):
            return (f"Cilium replaces kube-proxy (kube-proxy-replacement={value} in ConfigMap "
                    f"{cm['metadata'].get('namespace', '')}/cilium-config)")
    for ds in daemonsets:
        ref = f"{ds['metadata'].get('namespace', '')}/{ds['metadata']['name']}"
        for c in containers(ds):
            args = " ".join(str(a) for a in (c.get("args") or []) + (c.get("command") or []))
            if "--kube-proxy-replacement=true" in args or "--kube-proxy-replacement=strict" \
                    in args:
                return f"Cilium replaces kube-proxy (--kube-proxy-replacement in {ref})"
            env = {str(e.get("name")): str(e.get("value", "")).lower()
                   for e in c.get("env") or []}
            if env.get("FELIX_BPFENABLED") == "true":
                return f"Calico's eBPF data plane replaces kube-proxy (FELIX_BPFENABLED on {ref})"
    return ""


def kube_proxy_config_left(configmaps: Iterable[Mapping[str, Any]]) -> str:
    """``namespace/name`` of a kubeadm kube-proxy ConfigMap (its DaemonSet should exist)."""
    for cm in configmaps:
        if cm["metadata"]["name"] == "kube-proxy" and "config.conf" in (cm.get("data") or {}):
            return f"{cm['metadata'].get('namespace', '')}/kube-proxy"
    return ""


def flannel_config_left(configmaps: Iterable[Mapping[str, Any]]) -> str:
    """``namespace/name`` of Flannel's own ``net-conf.json`` ConfigMap: its DaemonSet's
    configuration, which no embedded Flannel has."""
    for cm in configmaps:
        data = cm.get("data") or {}
        if "net-conf.json" in data and "cni-conf.json" in data:
            return f"{cm['metadata'].get('namespace', '')}/{cm['metadata']['name']}"
    return ""


def dns_service(services: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The cluster DNS Service: ``k8s-app=kube-dns`` or named kube-dns; else a Service named
    ``dns-default`` (OpenShift); else a selector Service serving port 53 in a system
    namespace."""
    def key(s: Mapping[str, Any]) -> int:
        meta = s["metadata"]
        if DNS_LABEL in labels(s).items() or meta["name"] == "kube-dns":
            return 0
        if meta["name"] == "dns-default":
            return 1
        ports = {int(p.get("port") or 0) for p in (s.get("spec") or {}).get("ports") or []}
        system = str(meta.get("namespace", "")).startswith(("kube-", "openshift-"))
        return 2 if 53 in ports and system and (s.get("spec") or {}).get("selector") else 9
    ranked = sorted(services, key=key)
    return ranked[0] if ranked and key(ranked[0]) < 9 else None


def workload_for(selector: Mapping[str, str], namespace: str,
                 candidates: Iterable[tuple[str, Mapping[str, Any]]]
                 ) -> tuple[str, Mapping[str, Any]] | None:
    """The (kind, object) in ``namespace`` whose pod template carries every selector label."""
    if not selector:
        return None
    for kind, obj in candidates:
        if obj["metadata"].get("namespace") == namespace \
                and selector.items() <= template_labels(obj).items():
            return kind, obj
    return None


def dns_workload(services: Sequence[Mapping[str, Any]],
                 candidates: Sequence[tuple[str, Mapping[str, Any]]]
                 ) -> tuple[str, Mapping[str, Any]] | None:
    """The Deployment or DaemonSet behind the DNS Service; else one labelled k8s-app=kube-dns."""
    svc = dns_service(services)
    if svc is not None:
        found = workload_for((svc.get("spec") or {}).get("selector") or {},
                             svc["metadata"].get("namespace", ""), candidates)
        if found:
            return found
    return next(((k, o) for k, o in candidates
                 if DNS_LABEL in (labels(o).items() | template_labels(o).items())), None)
