"""CoreDNS: the cluster zone, and the built-in container reaching its API and upstream."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from netdoctor.lab import manifests
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store
from netdoctor.lab.components.coredns import CoreDNS, parse_corefile
from netdoctor.lab.components.coredns_zone import answer
from netdoctor.lab.nsock import listener_in
from selftests.lab.comptopo import (
    addr,
    ans_exec,
    context,
    link,
    namespaces,
    new_store,
    ns_exec,
    route,
    stop,
    tag,
    wait_for,
)

SERVICES = resource("", "services")
SLICES = resource("discovery.k8s.io", "endpointslices")
CONFIGMAPS = resource("", "configmaps")
POD_IP, UPSTREAM = "10.244.0.22", "192.0.2.53"
COREFILE = manifests.COREFILE  # the kubeadm Corefile the lab seeds


def cluster_store() -> Store:
    store = new_store("default", "kube-system")
    store.create(CONFIGMAPS, {"metadata": {"name": "coredns", "namespace": "kube-system"},
                              "data": {"Corefile": COREFILE}})
    store.create(SERVICES, {"metadata": {"name": "kubernetes", "namespace": "default"},
                            "spec": {"clusterIP": "10.96.0.1", "ports": [
                                {"name": "https", "port": 443, "protocol": "TCP"}]}})
    store.create(SERVICES, {"metadata": {"name": "db", "namespace": "default"},
                            "spec": {"clusterIP": "None", "ports": [
                                {"name": "pg", "port": 5432, "protocol": "TCP"}]}})
    store.create(SLICES, {
        "metadata": {"name": "db-x", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.1.5"], "hostname": "db-0",
                       "conditions": {"ready": True}},
                      {"addresses": ["10.244.1.6"], "conditions": {"ready": False}}]})
    return store


def ask(store: Store, name: str, qtype: str = "A") -> DNSRecord:
    return answer(store, "cluster.local", DNSRecord.question(name, qtype))


# -- the zone ---------------------------------------------------------------------------------
def test_zone_answers_like_the_kubernetes_plugin() -> None:
    store = cluster_store()
    r = ask(store, "kubernetes.default.svc.cluster.local")
    assert [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]
    assert [str(rr.rdata) for rr in ask(store, "db.default.svc.cluster.local").rr] == \
        ["10.244.1.5"]  # headless: ready endpoints only
    assert str(ask(store, "db-0.db.default.svc.cluster.local").rr[0].rdata) == "10.244.1.5"
    assert str(ask(store, "10-244-3-4.default.pod.cluster.local").rr[0].rdata) == "10.244.3.4"
    srv = ask(store, "_https._tcp.kubernetes.default.svc.cluster.local", "SRV")
    assert srv.rr[0].rdata.port == 443
    assert str(srv.rr[0].rdata.target) == "kubernetes.default.svc.cluster.local."
    missing = ask(store, "nope.default.svc.cluster.local")
    assert missing.header.rcode == RCODE.NXDOMAIN
    assert QTYPE.get(missing.auth[0].rtype) == "SOA"
    aaaa = ask(store, "kubernetes.default.svc.cluster.local", "AAAA")
    assert (aaaa.header.rcode, aaaa.rr) == (RCODE.NOERROR, [])
    assert ask(store, "x.nonexistent-ns.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_corefile_parsing() -> None:
    cf = parse_corefile(COREFILE)
    assert (cf.cluster_zone, cf.forward, cf.health_port, cf.ready_port) == \
        ("cluster.local", ["/etc/resolv.conf"], 8080, 8181)
    assert parse_corefile(".:53 {\n forward . 192.0.2.1 192.0.2.2:5353\n}\n").forward == \
        ["192.0.2.1", "192.0.2.2:5353"]


# -- the container ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dns_topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Pod -> node -> peer; the peer holds 10.96.0.1 (the API) and the upstream resolver."""
    t = tag()
    names = {"pod": f"ndtc{t}p", "node": f"ndtc{t}n", "peer": f"ndtc{t}x"}
    with namespaces(*names.values()):
        link(names["pod"], "eth0", names["node"], "vpod")
        link(names["peer"], "eth0", names["node"], "vpeer")
        addr(names["pod"], "eth0", f"{POD_IP}/24")
        route(names["pod"], "default", "via", "10.244.0.1")
        addr(names["node"], "vpod", "10.244.0.1/24")
        addr(names["node"], "vpeer", "10.200.0.1/24")
        for ip in ("10.96.0.1", UPSTREAM):
            route(names["node"], f"{ip}/32", "via", "10.200.0.2")
        ns_exec(names["node"], "sysctl -qw net.ipv4.ip_forward=1")
        addr(names["peer"], "eth0", "10.200.0.2/24", "10.96.0.1/32", f"{UPSTREAM}/32")
        route(names["peer"], "default", "via", "10.200.0.1")
        etc = Path("/etc/netns") / names["pod"]
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {UPSTREAM}\n")
        ca = trustme.CA()
        ca_file = tmp_path_factory.mktemp("ca") / "ca.crt"
        ca.cert_pem.write_to_path(str(ca_file))
        yield {**names, "ca": ca, "ca_file": ca_file}


class _Upstream(asyncio.DatagramProtocol):
    """A resolver on a documentation address that knows one external name."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        q = DNSRecord.parse(data)
        reply = q.reply()
        if str(q.q.qname) == "www.example.com." and q.q.qtype == QTYPE.A:
            reply.add_answer(RR("www.example.com.", QTYPE.A, rdata=A("203.0.113.7"), ttl=60))
        self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]


async def start_peer(topo: dict[str, Any]) -> tuple[web.AppRunner, asyncio.BaseTransport]:
    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "29", "gitVersion": "v1.29.0"})
    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    topo["ca"].issue_cert("kubernetes.default.svc", "10.96.0.1").configure_cert(tls)
    await web.SockSite(runner, listener_in(topo["peer"], "10.96.0.1", 443),
                       ssl_context=tls).start()
    udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        _Upstream, sock=listener_in(topo["peer"], UPSTREAM, 53, socket.SOCK_DGRAM))
    return runner, udp


async def dig(topo: dict[str, Any], name: str, *opts: str) -> str:
    _, out, _ = await ans_exec(topo["pod"], "dig", f"@{POD_IP}", name, "+time=4", "+tries=1",
                               *opts, timeout=10)
    return out


async def ready_code(topo: dict[str, Any]) -> str:
    _, out, _ = await ans_exec(topo["node"], "curl", "-s", "-o", "/dev/null", "-w",
                               "%{http_code}", "-m", "2", f"http://{POD_IP}:8181/ready")
    return out


def run_coredns(topo: dict[str, Any], logs: list[str], dns: CoreDNS) -> asyncio.Task[int]:
    # The Corefile comes from the ConfigMap the pod mounts at /etc/coredns.
    pod = {"metadata": {"name": "coredns-1", "namespace": "kube-system"},
           "spec": {"volumes": [{"name": "config-volume", "configMap": {"name": "coredns"}}]}}
    container = {"name": "coredns", "volumeMounts": [{"name": "config-volume",
                                                      "mountPath": "/etc/coredns"}]}
    ctx = context(cluster_store(), topo["pod"], POD_IP, pod=pod, container=container,
                  ca_file=topo["ca_file"], logs=logs)
    return asyncio.create_task(dns.run(ctx))


def test_coredns_serves_cluster_and_external_names(dns_topo: dict[str, Any]) -> None:
    async def scenario() -> None:
        runner, udp = await start_peer(dns_topo)
        logs: list[str] = []
        task = run_coredns(dns_topo, logs, CoreDNS())
        try:
            async def ready() -> bool:
                assert not task.done(), logs
                return await ready_code(dns_topo) == "200"
            await wait_for(ready, 5, "CoreDNS readiness")
            out = await dig(dns_topo, "kubernetes.default.svc.cluster.local", "+short")
            assert out.strip() == "10.96.0.1"
            out = await dig(dns_topo, "kubernetes.default.svc.cluster.local", "+short", "+tcp")
            assert out.strip() == "10.96.0.1"
            assert (await dig(dns_topo, "www.example.com", "+short")).strip() == "203.0.113.7"
            assert "status: NXDOMAIN" in await dig(dns_topo, "nope.default.svc.cluster.local")
        finally:
            await stop(task)
            udp.close()
            await runner.cleanup()
        assert logs[:3] == [".:53", logs[1], "CoreDNS-1.11.1"]
        assert logs[1].startswith("[INFO] plugin/reload: Running configuration SHA512 = ")

    asyncio.run(scenario())


def test_coredns_without_api_waits_then_exits_1(dns_topo: dict[str, Any]) -> None:
    async def scenario() -> None:
        logs: list[str] = []
        dns = CoreDNS()
        dns.startup_deadline = 2.5
        # Nothing answers on 10.96.0.1:443 and SYNs vanish, as with a broken pod network.
        ns_exec(dns_topo["peer"], "iptables-nft -A INPUT -p tcp --dport 443 -j DROP")
        try:
            task = run_coredns(dns_topo, logs, dns)
            await asyncio.sleep(0.5)
            assert await ready_code(dns_topo) == "503"
            assert await asyncio.wait_for(task, 5) == 1
        finally:
            ns_exec(dns_topo["peer"], "iptables-nft -F INPUT")
        waiting = [ln for ln in logs if "waiting for Kubernetes API before starting server" in ln]
        assert len(waiting) >= 2
        assert logs[-1] == ('[FATAL] plugin/kubernetes: Get "https://10.96.0.1:443/version": '
                            "dial tcp 10.96.0.1:443: i/o timeout")

    asyncio.run(scenario())


def test_coredns_upstream_timeout_is_servfail(dns_topo: dict[str, Any]) -> None:
    async def scenario() -> None:
        runner, udp = await start_peer(dns_topo)
        logs: list[str] = []
        task = run_coredns(dns_topo, logs, CoreDNS())
        ns_exec(dns_topo["peer"], "iptables-nft -A INPUT -p udp --dport 53 -j DROP")
        try:
            await wait_for(lambda: _is_ready(dns_topo), 5, "CoreDNS readiness")
            assert "status: SERVFAIL" in await dig(dns_topo, "www.example.com")
        finally:
            ns_exec(dns_topo["peer"], "iptables-nft -F INPUT")
            await stop(task)
            udp.close()
            await runner.cleanup()
        pattern = (r"\[ERROR\] plugin/errors: 2 www\.example\.com\. A: read udp "
                   r"10\.244\.0\.22:\d+->192\.0\.2\.53:53: i/o timeout")
        assert any(re.fullmatch(pattern, ln) for ln in logs), logs

    asyncio.run(scenario())


async def _is_ready(topo: dict[str, Any]) -> bool:
    return await ready_code(topo) == "200"


def test_coredns_api_refused_names_the_dial_error(dns_topo: dict[str, Any]) -> None:
    async def scenario() -> list[str]:
        logs: list[str] = []
        dns = CoreDNS()
        dns.startup_deadline = 1.2
        assert await asyncio.wait_for(run_coredns(dns_topo, logs, dns), 4) == 1
        return logs

    logs = asyncio.run(scenario())  # the peer holds 10.96.0.1 but nothing listens on 443
    assert logs[-1].endswith("dial tcp 10.96.0.1:443: connect: connection refused"), logs
