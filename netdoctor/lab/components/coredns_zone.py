"""Answers for the cluster zone, as CoreDNS's kubernetes plugin gives them.

Records: ``<svc>.<ns>.svc.<zone>`` (ClusterIP, or the ready endpoint addresses of
a headless Service, or a CNAME for an ExternalName Service),
``<endpoint>.<svc>.<ns>.svc.<zone>`` for headless endpoints (their hostname or
dashed IP), ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV, and
``<a-b-c-d>.<ns>.pod.<zone>`` (``pods insecure``). Names that do not exist get
NXDOMAIN with the zone's SOA; existing names asked for another type get an
empty NOERROR with the SOA.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, SOA, SRV, A, DNSRecord

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store

SERVICES = resource("", "services")
SLICES = resource("discovery.k8s.io", "endpointslices")
NAMESPACES = resource("", "namespaces")
TTL = 30  # the kubeadm Corefile's "ttl 30"
SERIAL = int(time.time())
Obj = dict[str, Any]


def soa(zone: str) -> RR:
    """The SOA CoreDNS serves for a cluster zone."""
    return RR(zone + ".", QTYPE.SOA, ttl=TTL, rdata=SOA(
        f"ns.dns.{zone}.", f"hostmaster.{zone}.", (SERIAL, 7200, 1800, 86400, TTL)))


def in_zone(qname: str, zone: str) -> bool:
    """Whether ``qname`` (with or without the final dot) lies in ``zone``."""
    name = qname.lower().rstrip(".")
    return name == zone or name.endswith("." + zone)


class Found:
    """What a name resolves to: address records, a CNAME target or SRV records."""

    def __init__(self) -> None:
        self.a: list[str] = []
        self.cname: str | None = None
        self.srv: list[tuple[int, int, str, str]] = []  # weight, port, target, target IP


def _ready_endpoints(store: Store, ns: str, svc: str) -> list[Obj]:
    out = []
    for es in store.items(SLICES, ns):
        if (es["metadata"].get("labels") or {}).get("kubernetes.io/service-name") != svc:
            continue
        for ep in es.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is not False:
                out.append({**ep, "_ports": es.get("ports") or []})
    return out


def _ep_label(ep: Obj) -> str:
    return str(ep.get("hostname") or ep["addresses"][0].replace(".", "-"))


def _service(store: Store, zone: str, ns: str, name: str, rest: list[str]) -> Found | None:
    svc = store.find(SERVICES, ns, name)
    if svc is None:
        return None
    spec = svc.get("spec") or {}
    found = Found()
    base = f"{name}.{ns}.svc.{zone}."
    headless = spec.get("clusterIP") in (None, "", "None")
    if spec.get("type") == "ExternalName":
        if rest:
            return None
        found.cname = str(spec.get("externalName", "")).rstrip(".") + "."
        return found
    endpoints = _ready_endpoints(store, ns, name) if headless else []
    if len(rest) == 1:  # <endpoint>.<svc>.<ns>.svc
        found.a = [a for ep in endpoints if _ep_label(ep) == rest[0] for a in ep["addresses"][:1]]
        return found if found.a else None
    if len(rest) == 2:  # _<port>._<proto>.<svc>.<ns>.svc
        return _srv(found, spec, endpoints, base, rest)
    if headless:
        found.a = sorted({ep["addresses"][0] for ep in endpoints if ep.get("addresses")})
    else:
        found.a = [str(spec["clusterIP"])]
    return found


def _srv(found: Found, spec: Obj, endpoints: list[Obj], base: str,
         rest: list[str]) -> Found | None:
    port_name, proto = rest[0].removeprefix("_"), rest[1].removeprefix("_").upper()
    ports = [p for p in spec.get("ports") or []
             if p.get("name") == port_name and (p.get("protocol") or "TCP") == proto]
    if not ports:
        return None
    if spec.get("clusterIP") not in (None, "", "None"):
        found.srv = [(100, int(p["port"]), base, str(spec["clusterIP"])) for p in ports]
        return found
    for ep in endpoints:
        for p in ep["_ports"]:
            if p.get("name") == port_name and (p.get("protocol") or "TCP") == proto:
                found.srv.append((0, int(p["port"]), f"{_ep_label(ep)}.{base}",
                                  ep["addresses"][0]))
    weight = 100 // max(1, len(found.srv))
    found.srv = [(weight, port, target, ip) for _, port, target, ip in found.srv]
    return found if found.srv else None


def _pod(labels: list[str]) -> Found | None:
    try:
        ip = ipaddress.IPv4Address(labels[0].replace("-", "."))
    except ValueError:
        return None
    found = Found()
    found.a = [str(ip)]
    return found


def lookup(store: Store, zone: str, qname: str) -> Found | bool | None:
    """What ``qname`` is: records, ``True`` for an empty non-terminal, ``None`` if absent."""
    name = qname.lower().rstrip(".")
    labels = name[: -len(zone)].rstrip(".").split(".") if name != zone else []
    labels = [x for x in labels if x]
    if not labels:
        return True
    kind = labels[-1]
    if kind not in ("svc", "pod"):
        return None
    if len(labels) == 1:
        return True
    ns = labels[-2]
    if store.find(NAMESPACES, "", ns) is None:
        return None
    if len(labels) == 2:
        return True
    if kind == "pod":
        return _pod(labels) if len(labels) == 3 else None
    if len(labels) > 5:
        return None
    return _service(store, zone, ns, labels[-3], labels[:-3])


def _records(found: Found, qname: str, qtype: int) -> tuple[list[RR], list[RR]]:
    if found.cname is not None:
        return [RR(qname, QTYPE.CNAME, ttl=TTL, rdata=CNAME(found.cname))], []
    if qtype in (QTYPE.A, QTYPE.ANY) and found.a:
        return [RR(qname, QTYPE.A, ttl=TTL, rdata=A(ip)) for ip in found.a], []
    if qtype in (QTYPE.SRV, QTYPE.ANY) and found.srv:
        answers = [RR(qname, QTYPE.SRV, ttl=TTL, rdata=SRV(0, w, port, target))
                   for w, port, target, _ in found.srv]
        extra = [RR(target, QTYPE.A, ttl=TTL, rdata=A(ip)) for _, _, target, ip in found.srv]
        return answers, extra
    if qtype == QTYPE.A and found.srv:  # A for an SRV-only name: point at the targets
        return [RR(qname, QTYPE.A, ttl=TTL, rdata=A(ip)) for *_, ip in found.srv], []
    return [], []


def answer(store: Store, zone: str, request: DNSRecord) -> DNSRecord:
    """The authoritative reply to ``request`` for a name in ``zone``."""
    reply = request.reply()
    qname, qtype = str(request.q.qname), int(request.q.qtype)
    found = lookup(store, zone, qname)
    if found is None:
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(soa(zone))
        return reply
    if qtype == QTYPE.SOA and qname.lower().rstrip(".") == zone:
        reply.add_answer(soa(zone))
        return reply
    answers, extra = _records(found, qname, qtype) if isinstance(found, Found) else ([], [])
    _add(reply, answers, extra)
    if not answers:
        reply.add_auth(soa(zone))
    return reply


def _add(reply: DNSRecord, answers: Iterable[RR], extra: Iterable[RR]) -> None:
    for rr in answers:
        reply.add_answer(rr)
    for rr in extra:
        reply.add_ar(rr)
