"""kube-proxy: rendered rules, and the built-in container on real namespaces."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from netdoctor.lab.api.resources import resource
from netdoctor.lab.components.echo import Echo
from netdoctor.lab.components.kube_proxy import KubeProxy, missing_jumps, parse_config, resync
from netdoctor.lab.components.kube_proxy import _saved_rules as saved_rules
from netdoctor.lab.components.kube_proxy_rules import (
    JUMPS,
    ext_chain,
    probability,
    render,
    sep_chain,
    svc_chain,
)
from netdoctor.lab.sh import run
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
CIDR = "10.244.0.0/16"
GOOD_CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
mode: ""
"""


def service(name: str, ip: str, port: int = 80, *, node_port: int = 0, ns: str = "default",
            port_name: str = "http", protocol: str = "TCP") -> dict[str, Any]:
    p: dict[str, Any] = {"name": port_name, "port": port, "protocol": protocol}
    if node_port:
        p["nodePort"] = node_port
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "selector": {"app": name}, "ports": [p],
                     "type": "NodePort" if node_port else "ClusterIP"}}


def slice_(svc: str, port: int, *ips: str, ns: str = "default", ready: bool = True,
           port_name: str = "http", protocol: str = "TCP") -> dict[str, Any]:
    return {"metadata": {"name": f"{svc}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": protocol}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip in ips]}


# -- render -----------------------------------------------------------------------------------
def test_chain_names_follow_kube_proxy_hashing() -> None:
    # base32(sha256("default/web:http" + "tcp"))[:16], the same for SVC and EXT chains
    assert svc_chain("default/web:http", "tcp") == "KUBE-SVC-CDGGSHYLG3RE2FKL"
    assert ext_chain("default/web:http", "tcp") == "KUBE-EXT-CDGGSHYLG3RE2FKL"
    assert sep_chain("default/web:http", "tcp", "10.244.0.3:8080").startswith("KUBE-SEP-")
    assert len(sep_chain("default/web:http", "tcp", "10.244.0.3:8080")) == 25


@pytest.mark.parametrize(("count", "expected"), [
    (1, []), (2, ["0.5000000000"]), (3, ["0.3333333333", "0.5000000000"])])
def test_load_balancing_probabilities(count: int, expected: list[str]) -> None:
    ips = [f"10.244.0.{i + 10}" for i in range(count)]
    nat, _ = render([service("web", "10.96.5.5")], [slice_("web", 8080, *ips)], "192.168.77.2",
                    CIDR)
    chain = svc_chain("default/web:http", "tcp")
    jumps = [ln for ln in nat.splitlines() if ln.startswith(f"-A {chain}") and "KUBE-SEP-" in ln]
    assert len(jumps) == count
    assert re.findall(r"--probability (\S+)", "\n".join(jumps)) == expected
    assert jumps[-1].endswith(sep_chain("default/web:http", "tcp", f"{ips[-1]}:8080"))
    assert probability(4) == "0.2500000000"


def test_cluster_ip_and_endpoint_rules() -> None:
    nat, flt = render([service("web", "10.96.5.5")], [slice_("web", 8080, "10.244.0.3")],
                      "192.168.77.2", CIDR)
    svc = svc_chain("default/web:http", "tcp")
    sep = sep_chain("default/web:http", "tcp", "10.244.0.3:8080")
    assert (f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
            f"-d 10.96.5.5 --dport 80 -j {svc}") in nat
    assert f"! -s {CIDR} -j KUBE-MARK-MASQ" in nat
    assert (f"-A {sep} -m comment --comment default/web:http -m tcp -p tcp -j DNAT "
            "--to-destination 10.244.0.3:8080") in nat
    assert "-j MASQUERADE --random-fully" in nat
    assert nat.splitlines()[-2].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    assert "REJECT" not in flt


def test_no_ready_endpoints_reject_in_filter() -> None:
    svc = service("web", "10.96.5.5", node_port=30080)
    nat, flt = render([svc], [slice_("web", 8080, "10.244.0.3", ready=False)], "n", CIDR)
    assert "KUBE-SVC-" not in nat
    assert ('-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" '
            "-m tcp -p tcp -d 10.96.5.5 --dport 80 -j REJECT") in flt
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" '
            "-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT") in flt


def test_node_port_and_headless() -> None:
    services = [service("web", "10.96.5.5", node_port=30080), service("db", "None")]
    slices = [slice_("web", 8080, "10.244.0.3"), slice_("db", 5432, "10.244.0.4")]
    nat, flt = render(services, slices, "192.168.77.2", CIDR)
    ext, svc = ext_chain("default/web:http", "tcp"), svc_chain("default/web:http", "tcp")
    assert (f"-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp "
            f"--dport 30080 -j {ext}") in nat
    assert f"-A {ext} -j {svc}" in nat
    assert "default/db" not in nat + flt


def test_port_matched_by_name_and_protocol() -> None:
    svc = service("dns", "10.96.0.10", 53, ns="kube-system", port_name="dns", protocol="UDP")
    wrong = slice_("dns", 53, "10.244.0.9", ns="kube-system", port_name="dns-tcp")
    _, flt = render([svc], [wrong], "n", CIDR)
    assert "kube-system/dns:dns has no endpoints" in flt
    nat, _ = render([svc], [slice_("dns", 53, "10.244.0.9", ns="kube-system", port_name="dns",
                                   protocol="UDP")], "n", CIDR)
    assert "-m udp -p udp -j DNAT --to-destination 10.244.0.9:53" in nat


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_render_is_accepted_by_iptables_restore(backend: str) -> None:
    ns = f"ndtc{tag()}r"
    services = [service("web", "10.96.5.5", node_port=30080), service("empty", "10.96.5.6")]
    nat, flt = render(services, [slice_("web", 8080, "10.244.0.3", "10.244.0.4")], "n", CIDR,
                      existing_nat_chains=["KUBE-SEP-OLDOLDOLDOLDOLDO"])
    with namespaces(ns):
        run(["ip", "netns", "exec", ns, f"iptables-{backend}-restore", "--test", "--noflush"],
            input=flt + nat)


def test_jumps_are_inserted_only_where_the_saved_rules_lack_them() -> None:
    saved = ("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-AAAA - [0:0]\n"
             '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
             "COMMIT\n*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n")
    chains, rules = saved_rules(saved)
    assert chains == ["PREROUTING", "KUBE-SVC-AAAA"]  # the nat table's only
    text = missing_jumps(JUMPS, rules)
    nat = text[text.index("*nat"):]
    assert [ln.split()[1] for ln in nat.splitlines() if ln.startswith("-I ")] == \
        ["OUTPUT", "POSTROUTING"]  # not PREROUTING
    flt = text[text.index("*filter"):text.index("*nat")]
    assert flt.count("\n-I ") == sum(j.table == "filter" for j in JUMPS)
    assert text.count("COMMIT\n") == 2
    # As iptables-nft-save 1.8 printed them on a lab node.
    all_there = saved_rules("""*filter
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
*nat
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
""")[1]  # noqa: E501
    assert missing_jumps(JUMPS, all_there) == ""


# -- the container ----------------------------------------------------------------------------
@pytest.fixture
def topo() -> Iterator[dict[str, str]]:
    """Node namespace (bridge, default route) with two pods and an outside client."""
    t = tag()
    names = {"node": f"ndtc{t}n", "a": f"ndtc{t}a", "b": f"ndtc{t}b", "out": f"ndtc{t}o"}
    with namespaces(*names.values()):
        node = names["node"]
        ns_exec(node, "ip link add br0 type bridge && ip link set br0 up && "
                      "ip addr add 10.244.0.1/24 dev br0 && sysctl -qw net.ipv4.ip_forward=1 "
                      "&& sysctl -qw net.bridge.bridge-nf-call-iptables=1")
        for pod, ip in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
            link(names[pod], "eth0", node, f"v{pod}")
            run(["ip", "-n", node, "link", "set", f"v{pod}", "master", "br0"])
            addr(names[pod], "eth0", f"{ip}/24")
            route(names[pod], "default", "via", "10.244.0.1")
        link(names["out"], "eth0", node, "eth0")
        addr(names["out"], "eth0", "192.168.77.1/24")
        addr(node, "eth0", "192.168.77.2/24")
        route(node, "default", "via", "192.168.77.1")  # needed for ClusterIP from the node
        yield names


def kube_proxy_store(config: str = GOOD_CONFIG) -> Any:
    store = new_store("default", "kube-system")
    store.create(CONFIGMAPS, {"metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                              "data": {"config.conf": config}})
    return store


async def curl(ns: str, url: str) -> tuple[int, str]:
    code, out, _ = await ans_exec(ns, "curl", "-sS", "-m", "3", url)
    return code, out


def test_kube_proxy_serves_cluster_ip_and_node_port(topo: dict[str, str]) -> None:
    async def scenario() -> None:
        store = kube_proxy_store()
        store.create(SERVICES, service("web", "10.96.5.5", node_port=30080))
        store.create(SERVICES, service("empty", "10.96.5.6"))
        store.create(SLICES, slice_("web", 8080, "10.244.0.3"))
        pod = {"metadata": {"name": "web-1", "namespace": "default"}, "spec": {}}
        echo = asyncio.create_task(Echo().run(context(
            store, topo["b"], "10.244.0.3", pod=pod,
            container={"name": "web", "args": ["netexec", "--http-port=8080"]})))
        logs: list[str] = []
        kp = KubeProxy()
        proxy = asyncio.create_task(kp.run(context(store, topo["node"], "192.168.77.2",
                                                   logs=logs)))

        async def synced() -> bool:
            assert not proxy.done(), logs
            return kp.syncs >= 1
        try:
            await wait_for(synced, 5, "the first sync")
            assert await curl(topo["a"], "http://10.96.5.5/hostname") == (0, "web-1")
            assert await curl(topo["node"], "http://10.96.5.5/hostname") == (0, "web-1")
            assert await curl(topo["out"], "http://192.168.77.2:30080/hostname") == (0, "web-1")
            code, body = await curl(topo["out"], "http://192.168.77.2:10256/healthz")
            assert code == 0
            assert json.loads(body)["nodeEligible"] is True
            started = time.monotonic()
            code, _, err = await ans_exec(topo["a"], "curl", "-sS", "-m", "3",
                                          "http://10.96.5.6/")
            # REJECT answers at once (connection refused) instead of letting curl time out.
            assert code == 7, err
            assert time.monotonic() - started < 1
            # Removing the endpoints resyncs on the event: the service now rejects.
            before = kp.syncs
            store.delete(SLICES, "default", "web-abcde")
            await wait_for(lambda: _true(kp.syncs > before), 3, "a resync")
            code, _, err = await ans_exec(topo["a"], "curl", "-sS", "-m", "3",
                                          "http://10.96.5.5/")
            assert code == 7, err
            # A jump someone removed is back, on top, at the next sync.
            ns_exec(topo["node"], "iptables-nft -t nat -I PREROUTING 1 -j ACCEPT && "
                                  "iptables-nft -t nat -D PREROUTING -m comment --comment "
                                  "'kubernetes service portals' -j KUBE-SERVICES")
            before = kp.syncs
            store.create(SERVICES, service("other", "10.96.5.7"))
            await wait_for(lambda: _true(kp.syncs > before), 3, "a resync")
            first = ns_exec(topo["node"], "iptables-nft -t nat -S PREROUTING").splitlines()[1]
            assert first.endswith("-j KUBE-SERVICES"), first
            # resync() syncs at once without a Service change, as a netfilter fault needs;
            # only the kube-proxy of that namespace.
            assert resync("ndtc-elsewhere") == 0
            before = kp.syncs
            assert resync(topo["node"]) == 1
            await wait_for(lambda: _true(kp.syncs > before), 3, "a resync on request")
        finally:
            await stop(proxy)
            await stop(echo)
        assert proxy.cancelled()
        # A stopped kube-proxy leaves its rules behind.
        saved = ns_exec(topo["node"], "iptables-nft-save")
        assert "default/web:http has no endpoints" in saved
        prerouting = ns_exec(topo["node"], "iptables-nft -t nat -S PREROUTING")
        assert prerouting.count("KUBE-SERVICES") == 1  # jumps are ensured, never duplicated

    asyncio.run(scenario())


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize(("config", "err"), [
    ("mode: [iptables\n", "failed complete: failed to decode: yaml:"),
    (GOOD_CONFIG.replace('mode: ""', "mode: nftables"), 'Invalid value: \\"nftables\\"'),
    (GOOD_CONFIG.replace('mode: ""', "mode: ipvs"), "can't use the IPVS proxier"),
    (GOOD_CONFIG.replace("  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n", ""),
     "no configuration has been provided"),
    (GOOD_CONFIG.replace('mode: ""', 'iptables:\n  mode: ""').replace("clusterCIDR", "clusterCidr"),
     'unknown field \\"clusterCidr\\"'),
])
def test_bad_config_exits_1_with_kube_proxy_error(config: str, err: str) -> None:
    logs: list[str] = []
    ctx = context(kube_proxy_store(config), "ndtc-never-created", "192.168.77.2", logs=logs)
    assert asyncio.run(asyncio.wait_for(KubeProxy().run(ctx), 5)) == 1
    klog_error = r'E\d{4} \d\d:\d\d:\d\d\.\d{6} +1 run\.go:74\] "command failed" err="'
    assert re.match(klog_error, logs[-1])
    assert err in logs[-1]


def test_good_config_parses() -> None:
    cfg = parse_config(GOOD_CONFIG)
    assert (cfg.mode, cfg.cluster_cidr) == ("iptables", CIDR)


def test_failed_restore_exits_1() -> None:
    # A stale service chain still referenced by someone else's rule cannot be deleted,
    # so the whole iptables-restore fails, as it would on a real node.
    ns = f"ndtc{tag()}f"
    logs: list[str] = []
    with namespaces(ns):
        ns_exec(ns, "iptables-nft -t nat -N KUBE-SEP-STALESTALESTALE && iptables-nft -t nat -N "
                    "OTHER && iptables-nft -t nat -A OTHER -j KUBE-SEP-STALESTALESTALE")
        ctx = context(kube_proxy_store(), ns, "192.168.77.2", logs=logs)
        assert asyncio.run(asyncio.wait_for(KubeProxy().run(ctx), 10)) == 1
    assert any('"Failed to execute iptables-restore" err="exit status' in ln for ln in logs), logs


def test_legacy_backend_writes_legacy_tables_only() -> None:
    ns = f"ndtc{tag()}l"
    store = kube_proxy_store()
    store.create(SERVICES, service("web", "10.96.5.5"))
    container = {"name": "kube-proxy", "command": ["/usr/local/bin/kube-proxy",
                                                   "--config=/var/lib/kube-proxy/config.conf",
                                                   "--iptables-backend=legacy"]}

    async def scenario() -> None:
        kp = KubeProxy()
        task = asyncio.create_task(kp.run(context(store, ns, "192.168.77.2",
                                                  container=container)))
        try:
            await wait_for(lambda: _true(kp.syncs >= 1 or task.done()), 5, "the first sync")
            assert not task.done()
        finally:
            await stop(task)

    with namespaces(ns):
        asyncio.run(scenario())
        # Read the legacy registry without listing (listing would create tables).
        assert "nat" in ns_exec(ns, "cat /proc/net/ip_tables_names")
        assert "default/web:http has no endpoints" in ns_exec(ns, "iptables-legacy-save")
        assert "KUBE-SERVICES" not in ns_exec(ns, "nft list ruleset 2>/dev/null || true")
