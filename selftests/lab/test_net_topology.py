"""Real traffic through the lab's data plane: router, 3 nodes, Flannel VXLAN, 6 pods."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from netdoctor.lab import sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import external, flannel, pods, topology
from selftests.lab._netlab import (
    Lab,
    Loop,
    build,
    in_ns,
    leftovers,
    peers_for,
    ping,
    prefix_for,
    require_root,
    rmtree,
    teardown,
)

PREFIX = prefix_for("t")


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(CA cert, serving cert+key) for the lab web server."""
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("example.com", "www.example.com", external.WEB_IP)
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(d / "web.pem"))
    return d / "ca.pem", d / "web.pem"


@pytest.fixture(scope="module")
def lab(loop: Loop, tmp_path_factory: pytest.TempPathFactory,
        tls_files: tuple[Path, Path]) -> Iterator[Lab]:
    require_root()
    state = tmp_path_factory.mktemp("netlab")
    web: external.WebServers | None = None
    try:
        built = loop.run(build(PREFIX, state))
        web = loop.run(external.start_web(built.router.netns, tls_files[1]))
        built.web = web
        print(f"\nbuild 3 nodes/6 pods: {built.timings}")
        yield built
    finally:
        if web is not None:
            loop.run(web.stop())
        print(f"destroy 3 nodes/6 pods: {loop.run(teardown(PREFIX, state)):.3f}s")
        rmtree(state)
    assert leftovers(PREFIX) == []


def cross_node_pairs(lab: Lab) -> list[tuple[pods.PodNet, pods.PodNet]]:
    return [(a, b) for a, b in itertools.permutations(lab.pods, 2) if a.node != b.node]


async def ping_all(pairs: list[tuple[pods.PodNet, pods.PodNet]]) -> dict[tuple[str, str], bool]:
    results = await asyncio.gather(*(ping(a.netns, b.ip) for a, b in pairs))
    return {(a.netns, b.ip): ok for (a, b), ok in zip(pairs, results, strict=True)}


def test_build_is_fast(lab: Lab) -> None:
    assert lab.timings["total"] < 5.0, lab.timings


def test_same_node_pods_ping(lab: Lab, loop: Loop) -> None:
    pairs = [(a, b) for a, b in itertools.permutations(lab.pods, 2) if a.node == b.node]
    assert len(pairs) == 6
    assert all(loop.run(ping_all(pairs)).values())


def test_every_cross_node_pair_pings(lab: Lab, loop: Loop) -> None:
    results = loop.run(ping_all(cross_node_pairs(lab)))
    assert len(results) == 24
    assert [k for k, ok in results.items() if not ok] == []


def test_vxlan_path_mtu(lab: Lab, loop: Loop) -> None:
    a, b = lab.pods[0], lab.pods[-1]
    assert a.node != b.node
    assert loop.run(ping(a.netns, b.ip, size=1422, df=True))
    assert not loop.run(ping(a.netns, b.ip, size=1423, df=True))


def test_pod_reaches_external_web_masqueraded(lab: Lab, loop: Loop) -> None:
    web = lab.web
    assert web is not None
    pod = lab.pods[2]
    res = loop.run(in_ns(pod.netns, "curl", "-sS", "-m", "3", f"http://{external.WEB_IP}/"))
    assert res.code == 0, res.stderr
    assert res.stdout == external.WEB_BODY
    # The router has no route to pod subnets: it only saw the node's own address.
    assert web.clients[-1] == lab.node_of(pod).internal_ip


def test_pod_reaches_external_https(lab: Lab, loop: Loop, tls_files: tuple[Path, Path]) -> None:
    res = loop.run(in_ns(lab.pods[4].netns, "curl", "-sS", "-m", "3", "--cacert",
                         str(tls_files[0]), "--resolve", f"example.com:443:{external.WEB_IP}",
                         "https://example.com/"))
    assert res.code == 0, res.stderr
    assert res.stdout == external.WEB_BODY


def test_external_unreachable_without_masquerade(lab: Lab, loop: Loop) -> None:
    """A pod address leaving unmasqueraded gets no answer: the router cannot route back."""
    node = lab.nodes[1]
    pod = next(p for p in lab.pods if p.node == node.name)
    exec_ = ["ip", "netns", "exec", node.netns, "iptables-nft", "-w", "-t", "nat"]
    rule = ["POSTROUTING", "-m", "comment", "--comment", flannel.MASQ_COMMENT,
            "-j", "FLANNEL-POSTRTG"]

    async def go() -> bool:
        await sh.arun([*exec_, "-D", *rule])
        try:
            return await ping(pod.netns, external.WEB_IP)
        finally:
            await flannel.ensure_masquerade(node)

    assert not loop.run(go())
    assert loop.run(ping(pod.netns, external.WEB_IP))


def test_dns_from_pod(lab: Lab, loop: Loop) -> None:
    pod = lab.pods[5].netns
    for server in external.RESOLVER_IPS:
        for name, ip in external.DNS_RECORDS.items():
            res = loop.run(in_ns(pod, "dig", "+short", "+time=2", "+tries=1", f"@{server}", name))
            assert res.stdout.split() == [ip], (server, name, res)
    aaaa = loop.run(in_ns(pod, "dig", "+time=2", "+tries=1", f"@{topology.ROUTER_IP}",
                          "example.com", "AAAA"))
    assert "status: NOERROR" in aaaa.stdout


def test_resolv_conf_per_pod(lab: Lab, loop: Loop) -> None:
    for pod in lab.pods:
        res = loop.run(in_ns(pod.netns, "cat", "/etc/resolv.conf"))
        assert res.stdout.splitlines()[0] == f"# pod {pod.netns}"


def test_ensure_bridge_conflict(lab: Lab, loop: Loop) -> None:
    node = lab.nodes[0]
    loop.run(pods.ensure_bridge(node, "cni0", "10.244.0.1/24", 1450))  # same address: no-op
    with pytest.raises(pods.CniError) as err:
        loop.run(pods.ensure_bridge(node, "cni0", "10.244.9.1/24", 1450))
    assert str(err.value) == ('failed to set bridge addr: "cni0" already has an IP address '
                              "different from 10.244.9.1/24")


def test_pods_set_up_at_once_share_one_new_bridge(lab: Lab, loop: Loop) -> None:
    # Two pods starting together on a node that has no bridge yet: both CNI ADDs must end
    # with the one bridge, as the real plugin takes the bridge the other one just made.
    node = lab.nodes[1]

    async def together() -> None:
        await asyncio.gather(*(pods.ensure_bridge(node, "cbr9", "10.244.99.1/24", 1450)
                               for _ in range(4)))
    try:
        loop.run(together())
        assert loop.run(pods.bridge_ipv4(node.netns, "cbr9")) == ["10.244.99.1/24"]
    finally:
        loop.run(sh.arun(["ip", "-n", node.netns, "link", "del", "cbr9"], check=False))


def test_node_sysctls_and_files(lab: Lab, loop: Loop) -> None:
    node = lab.nodes[1]
    for key, value in topology.NODE_SYSCTLS.items():
        assert loop.run(topology.get_sysctl(node.netns, key)) == value
    loop.run(topology.set_sysctl(node.netns, "net.ipv4.conf.all.rp_filter", "1"))
    assert loop.run(topology.get_sysctl(node.netns, "net.ipv4.conf.all.rp_filter")) == "1"
    loop.run(topology.set_sysctl(node.netns, "net.ipv4.conf.all.rp_filter", "2"))
    for plugin in topology.CNI_PLUGINS:
        assert (node.root / "opt/cni/bin" / plugin).stat().st_mode & 0o111
    env = (node.root / flannel.SUBNET_ENV).read_text()
    assert "FLANNEL_SUBNET=10.244.1.1/24\n" in env
    assert "FLANNEL_MTU=1450\n" in env
    conf = json.loads((node.root / flannel.CONFLIST).read_text())
    assert conf["name"] == "cbr0"
    assert [p["type"] for p in conf["plugins"]] == ["flannel", "portmap"]


def test_sync_peers_and_masquerade_idempotent(lab: Lab, loop: Loop) -> None:
    async def snapshot(ns: str) -> list[str]:
        out = []
        for argv in (["ip", "-n", ns, "route"], ["ip", "-n", ns, "neigh", "show", "dev",
                     "flannel.1"], ["bridge", "-n", ns, "fdb", "show", "dev", "flannel.1"],
                     ["ip", "netns", "exec", ns, "iptables-nft", "-w", "-t", "nat", "-S"],
                     ["ip", "netns", "exec", ns, "iptables-nft", "-w", "-S"]):
            out.append((await sh.arun(argv)).stdout)
        return out

    for node in lab.nodes:
        before = loop.run(snapshot(node.netns))
        assert loop.run(flannel.sync_peers(node, peers_for(lab, node))) == 0
        loop.run(flannel.ensure_masquerade(node))
        assert loop.run(snapshot(node.netns)) == before


def test_sync_peers_removes_departed_peer(lab: Lab, loop: Loop) -> None:
    node, gone = lab.nodes[0], lab.nodes[2]
    others = [p for p in peers_for(lab, node) if p.internal_ip != gone.internal_ip]
    try:
        assert loop.run(flannel.sync_peers(node, others)) == 3  # route, neighbour, fdb
        route = loop.run(sh.arun(["ip", "-n", node.netns, "route", "show",
                                           gone.pod_cidr])).stdout
        assert route == ""
    finally:
        loop.run(flannel.sync_peers(node, peers_for(lab, node)))


def test_routes_to_tells_a_missing_or_blackholed_peer(lab: Lab, loop: Loop) -> None:
    node, gone = lab.nodes[0], lab.nodes[2]
    ranges = [n.pod_cidr for n in lab.nodes if n is not node]
    assert loop.run(topology.routes_to(node, ranges))
    others = [p for p in peers_for(lab, node) if p.internal_ip != gone.internal_ip]
    try:
        loop.run(flannel.sync_peers(node, others))
        assert not loop.run(topology.routes_to(node, ranges))
        loop.run(sh.arun(["ip", "-n", node.netns, "route", "add", "blackhole", gone.pod_cidr]))
        assert not loop.run(topology.routes_to(node, ranges))
    finally:
        loop.run(sh.arun(["ip", "-n", node.netns, "route", "del", "blackhole", gone.pod_cidr],
                         check=False))
        loop.run(flannel.sync_peers(node, peers_for(lab, node)))
    assert loop.run(topology.routes_to(node, ranges))


def test_pod_ports_have_hairpin(lab: Lab, loop: Loop) -> None:
    for pod in lab.pods:
        res = loop.run(sh.arun(["bridge", "-n", pod.node_netns, "-j", "-d", "link", "show",
                                "dev", pod.host_veth]))
        assert json.loads(res.stdout)[0]["hairpin"] is True


def test_ip_forward_off_breaks_that_node(lab: Lab, loop: Loop) -> None:
    node = lab.nodes[1]
    a = next(p for p in lab.pods if p.node == node.name)
    b = next(p for p in lab.pods if p.node == lab.nodes[0].name)
    loop.run(topology.set_sysctl(node.netns, "net.ipv4.ip_forward", "0"))
    try:
        assert not loop.run(ping(a.netns, b.ip))
    finally:
        loop.run(topology.set_sysctl(node.netns, "net.ipv4.ip_forward", "1"))
    assert loop.run(ping(a.netns, b.ip))


def test_vxlan_blocked_between_two_nodes_only(lab: Lab, loop: Loop) -> None:
    """UDP 8472 filtered from node 0 to node 2: only pairs between those nodes fail."""
    src, dst = lab.nodes[0], lab.nodes[2]
    rule = ["INPUT", "-p", "udp", "--dport", str(flannel.VXLAN_PORT), "-s", src.internal_ip,
            "-j", "DROP"]
    exec_ = ["ip", "netns", "exec", dst.netns, "iptables-nft", "-w"]
    pairs = cross_node_pairs(lab)
    loop.run(sh.arun([*exec_, "-I", *rule]))
    try:
        results = loop.run(ping_all(pairs))
    finally:
        loop.run(sh.arun([*exec_, "-D", *rule]))
    # An echo needs both directions, so both orders of the pair fail.
    broken = {(a.netns, b.ip) for a, b in pairs if {a.node, b.node} == {src.name, dst.name}}
    assert {k for k, ok in results.items() if not ok} == broken
    assert len(broken) == 8


def test_vxlan_down_breaks_exactly_that_node(lab: Lab, loop: Loop) -> None:
    down = lab.nodes[2]
    pairs = cross_node_pairs(lab)
    try:
        loop.run(flannel.vxlan_down(down))
        results = loop.run(ping_all(pairs))
        broken = {(a.netns, b.ip) for a, b in pairs if down.name in (a.node, b.node)}
        assert {k for k, ok in results.items() if not ok} == broken
        assert len(broken) == 16
    finally:
        loop.run(_restore(lab, down))
    assert all(loop.run(ping_all(pairs)).values())


async def _restore(lab: Lab, node: NodeInfo) -> None:
    # A new flannel.1 has a new MAC: every node must learn it, as from a Node update.
    lab.macs[node.name] = await flannel.vxlan_up(node)
    await asyncio.gather(*(flannel.sync_peers(n, peers_for(lab, n)) for n in lab.nodes))


def test_destroy_is_complete_and_idempotent(loop: Loop, tmp_path: Path) -> None:
    require_root()
    prefix = prefix_for("d")
    try:
        small = loop.run(build(prefix, tmp_path, nodes=2, per_node=1))
        assert leftovers(prefix)
        pid = small.router.dns_pid
    finally:
        seconds = loop.run(teardown(prefix, tmp_path))
    print(f"\ndestroy 2 nodes/2 pods: {seconds:.3f}s")
    assert leftovers(prefix) == []
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
    loop.run(topology.destroy(prefix, tmp_path))  # nothing left: still fine
    loop.run(topology.destroy(prefix_for("never"), tmp_path / "nowhere"))


def test_20_pods_build_time(loop: Loop, tmp_path: Path) -> None:
    require_root()
    prefix = prefix_for("s")
    try:
        big = loop.run(build(prefix, tmp_path, nodes=4, per_node=5), timeout=60)
        assert len(big.pods) == 20
        print(f"\nbuild 4 nodes/20 pods: {big.timings}")
        assert loop.run(ping(big.pods[0].netns, big.pods[-1].ip))
    finally:
        seconds = loop.run(teardown(prefix, tmp_path))
    print(f"destroy 4 nodes/20 pods: {seconds:.3f}s")
    assert leftovers(prefix) == []
