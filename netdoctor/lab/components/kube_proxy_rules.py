"""kube-proxy's iptables-mode rules, rendered from Services and EndpointSlices.

The output has the shape real kube-proxy writes with ``iptables-restore
--noflush`` (chain names, comments, load-balancing probabilities), so tools and
diagnoses that read a real node's rules read the lab's the same way.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

MASQ_MARK = "0x4000"  # kube-proxy's default masqueradeBit 14
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")


@dataclass(frozen=True)
class Jump:
    """A rule kube-proxy keeps at the top of a built-in chain (``iptables -C`` / ``-I``)."""

    table: str
    src_chain: str
    dst_chain: str
    comment: str
    extra: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """The rule's arguments after ``-I <chain>``, as kube-proxy orders them."""
        return [*self.extra, "-m", "comment", "--comment", self.comment, "-j", self.dst_chain]


_NEW = ("-m", "conntrack", "--ctstate", "NEW")
JUMPS: tuple[Jump, ...] = (
    Jump("filter", "INPUT", "KUBE-EXTERNAL-SERVICES",
         "kubernetes externally-visible service portals", _NEW),
    Jump("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES",
         "kubernetes externally-visible service portals", _NEW),
    Jump("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports"),
    Jump("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", _NEW),
    Jump("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", _NEW),
    Jump("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
    Jump("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", _NEW),
    Jump("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", _NEW),
    Jump("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", _NEW),
    Jump("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
    Jump("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"),
    Jump("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"),
)


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(port_name: str, protocol: str) -> str:
    """``KUBE-SVC-`` chain of a service port (``ns/svc:port`` and lower-case protocol)."""
    return "KUBE-SVC-" + _hash16(port_name + protocol)


def ext_chain(port_name: str, protocol: str) -> str:
    """``KUBE-EXT-`` chain (NodePort and other external destinations) of a service port."""
    return "KUBE-EXT-" + _hash16(port_name + protocol)


def sep_chain(port_name: str, protocol: str, endpoint: str) -> str:
    """``KUBE-SEP-`` chain of one endpoint (``ip:port``) of a service port."""
    return "KUBE-SEP-" + _hash16(port_name + protocol + endpoint)


def probability(n: int) -> str:
    """The ``--probability`` for the first of ``n`` remaining endpoints, as kube-proxy prints it."""
    return f"{1.0 / n:0.10f}"


@dataclass(frozen=True)
class ServicePort:
    """One proxied port of a Service, with its ready endpoints (``ip:port``, sorted)."""

    name: str  # "ns/svc:port", or "ns/svc" for an unnamed port
    protocol: str  # lower case
    cluster_ip: str
    port: int
    node_port: int
    endpoints: tuple[str, ...]


def _ready(ep: Obj) -> bool:
    # The API says an unset condition should be read as ready.
    return (ep.get("conditions") or {}).get("ready") is not False


def _endpoints_for(svc: Obj, port: Obj, slices: Iterable[Obj]) -> tuple[str, ...]:
    meta = svc["metadata"]
    want_name = port.get("name") or ""
    want_proto = port.get("protocol") or "TCP"
    found: set[str] = set()
    for es in slices:
        es_meta = es.get("metadata") or {}
        if es_meta.get("namespace") != meta.get("namespace") or \
                (es_meta.get("labels") or {}).get(SERVICE_NAME_LABEL) != meta["name"]:
            continue
        if es.get("addressType", "IPv4") != "IPv4":
            continue
        for p in es.get("ports") or []:
            if (p.get("name") or "") != want_name or (p.get("protocol") or "TCP") != want_proto:
                continue
            if p.get("port") is None:
                continue
            for ep in es.get("endpoints") or []:
                if _ready(ep):
                    found.update(f"{a}:{p['port']}" for a in ep.get("addresses") or [])
    return tuple(sorted(found))


def service_ports(services: Iterable[Obj], slices: Iterable[Obj]) -> list[ServicePort]:
    """The proxied service ports: headless and ExternalName Services have none."""
    slices = list(slices)
    out: list[ServicePort] = []
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        base = f"{svc['metadata'].get('namespace', 'default')}/{svc['metadata']['name']}"
        for port in spec.get("ports") or []:
            name = f"{base}:{port['name']}" if port.get("name") else base
            out.append(ServicePort(name, (port.get("protocol") or "TCP").lower(), ip,
                                   int(port["port"]), int(port.get("nodePort") or 0),
                                   _endpoints_for(svc, port, slices)))
    return sorted(out, key=lambda sp: (sp.name, sp.protocol))


class _Tables:
    def __init__(self) -> None:
        self.nat_chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
        self.filter_chains = ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
                              "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]
        self.nat: list[str] = []
        self.filter: list[str] = []


def _write_service(t: _Tables, sp: ServicePort, cluster_cidr: str) -> None:
    p, name = sp.protocol, sp.name
    match = f"-m {p} -p {p} -d {sp.cluster_ip} --dport {sp.port}"
    if not sp.endpoints:
        # No endpoints: only filter rules, so clients get "connection refused" at once.
        comment = f'"{name} has no endpoints"'
        t.filter.append(f"-A KUBE-SERVICES -m comment --comment {comment} {match} -j REJECT")
        if sp.node_port:
            t.filter.append(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {comment} "
                            f"-m addrtype --dst-type LOCAL -m {p} -p {p} --dport {sp.node_port} "
                            "-j REJECT")
        return
    svc, ext = svc_chain(name, p), ext_chain(name, p)
    cip = f'-m comment --comment "{name} cluster IP"'
    t.nat_chains.append(svc)
    t.nat.append(f"-A KUBE-SERVICES {cip} {match} -j {svc}")
    if sp.node_port:
        t.nat_chains.append(ext)
        t.nat.append(f"-A KUBE-NODEPORTS -m comment --comment {name} -m {p} -p {p} "
                     f"--dport {sp.node_port} -j {ext}")
        t.nat.append(f'-A {ext} -m comment --comment "masquerade traffic for {name} external '
                     f'destinations" -j KUBE-MARK-MASQ')
        t.nat.append(f"-A {ext} -j {svc}")
    if cluster_cidr:
        # Traffic from outside the pod network is masqueraded so replies come back here.
        t.nat.append(f"-A {svc} {cip} {match} ! -s {cluster_cidr} -j KUBE-MARK-MASQ")
    n = len(sp.endpoints)
    for i, ep in enumerate(sp.endpoints):
        sep = sep_chain(name, p, ep)
        stat = ""
        if i < n - 1:  # the last endpoint takes whatever the earlier rules left
            stat = f" -m statistic --mode random --probability {probability(n - i)}"
        t.nat.append(f'-A {svc} -m comment --comment "{name} -> {ep}"{stat} -j {sep}')
    for ep in sp.endpoints:
        sep = sep_chain(name, p, ep)
        t.nat_chains.append(sep)
        t.nat.append(f"-A {sep} -m comment --comment {name} -s {ep.rsplit(':', 1)[0]} "
                     "-j KUBE-MARK-MASQ")
        t.nat.append(f"-A {sep} -m comment --comment {name} -m {p} -p {p} "
                     f"-j DNAT --to-destination {ep}")


def _static_rules(t: _Tables) -> None:
    mark = f"{MASQ_MARK}/{MASQ_MARK}"
    t.nat[:0] = [
        f"-A KUBE-POSTROUTING -m mark ! --mark {mark} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
    ]
    t.nat.append(f"-A KUBE-SERVICES -m comment --comment {NODEPORTS_COMMENT} "
                 "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    t.filter += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {mark} -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]


def _table(name: str, chains: list[str], rules: list[str], stale: Iterable[str] = ()) -> str:
    lines = [f"*{name}", *(f":{c} - [0:0]" for c in chains)]
    stale = sorted(set(stale) - set(chains))
    # A stale chain is declared (which flushes it) before it is deleted, as kube-proxy does.
    lines += [f":{c} - [0:0]" for c in stale]
    lines += rules
    lines += [f"-X {c}" for c in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render(services: Iterable[Obj], slices: Iterable[Obj], node_ip: str, cluster_cidr: str,
           *, existing_nat_chains: Collection[str] = ()) -> tuple[str, str]:
    """kube-proxy's ``iptables-restore --noflush`` input for the nat and filter tables.

    Args:
        services: Service objects (any namespace).
        slices: ``discovery.k8s.io/v1`` EndpointSlices; ready endpoints are used.
        node_ip: the node's InternalIP. NodePorts match every local address
            (``--dst-type LOCAL``), as with kube-proxy's default nodePortAddresses,
            so it does not change the rules; it is part of the signature so callers
            state which node the rules are for.
        cluster_cidr: the pod network; traffic to a ClusterIP from outside it is
            masqueraded. Empty: no such rule (kube-proxy without a local detector).
        existing_nat_chains: chains now in the nat table; service chains among them
            that are no longer rendered are flushed and deleted.

    Returns:
        ``(nat, filter)`` texts, each one ``*table ... COMMIT`` block.

    The jumps from the built-in chains (:data:`JUMPS`) are not part of the input:
    like kube-proxy, apply them with ``iptables -C`` / ``-I`` so they are never
    duplicated.
    """
    del node_ip  # see the docstring: NodePorts use --dst-type LOCAL
    t = _Tables()
    for sp in service_ports(services, slices):
        _write_service(t, sp, cluster_cidr)
    _static_rules(t)
    stale = [c for c in existing_nat_chains if c.startswith(SERVICE_CHAIN_PREFIXES)]
    return (_table("nat", t.nat_chains, t.nat, stale),
            _table("filter", t.filter_chains, t.filter))
