"""Path causes from synthetic node facts and failing matrices: one case per rule class, the
localisation, and the invariant (every failed or flaky check explained or unexplained)."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from netdoctor.model import CheckResult, Place
from netdoctor.rootcause.facts import VXLAN_DEVICE, NodeFacts, Route
from netdoctor.rootcause.facts import nft_rules as parse_nft
from netdoctor.rootcause.localise import node_loci, pair_loci, target_loci
from netdoctor.rootcause.model import NodeView, Observations, ReplicaProbe
from netdoctor.rootcause.pathfacts import Traffic, rule_matches
from netdoctor.rootcause.rules import explain

NODES = (NodeView("cp", "192.168.4.10", "10.244.0.0/24"),
         NodeView("w1", "192.168.4.11", "10.244.1.0/24"),
         NodeView("w2", "192.168.4.12", "10.244.2.0/24"))
MAC = {"cp": "aa:00:00:00:00:10", "w1": "aa:00:00:00:00:11", "w2": "aa:00:00:00:00:12"}
MASQ = "-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully"
PAIR_KINDS = ("pod_ping", "pod_http")
NODE_KINDS = ("service_cluster_ip", "egress_http", "dns[cluster]")


def healthy_facts(view: NodeView) -> NodeFacts:
    peers = [n for n in NODES if n.name != view.name]
    vtep = view.pod_cidr.split("/")[0]
    return NodeFacts(
        node=view.name, complete=True, flannel_subnet=view.pod_cidr.replace(".0/", ".1/"),
        flannel_mtu=1450,
        addresses={"eth0": (f"{view.internal_ip}/24",), VXLAN_DEVICE: (f"{vtep}/32",),
                   "cni0": (view.pod_cidr.replace(".0/", ".1/"),)},
        mtus={"eth0": 1500, VXLAN_DEVICE: 1450, "cni0": 1450},
        macs={VXLAN_DEVICE: MAC[view.name]},
        routes=tuple(Route(p.pod_cidr or "", VXLAN_DEVICE, p.pod_cidr.split("/")[0])
                     for p in peers if p.pod_cidr),
        vxlan_neighbors={(p.pod_cidr or "").split("/")[0]: MAC[p.name] for p in peers},
        vxlan_fdb={MAC[p.name]: p.internal_ip for p in peers},
        nft_by_table={"nat": (f"-A FLANNEL-POSTRTG -s {view.pod_cidr} -d 10.244.0.0/16 -j RETURN",
                              MASQ),
                      "filter": ("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",)},
        sysctls={"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"})


def facts(**changes: dict[str, object]) -> dict[str, NodeFacts]:
    """Healthy facts of every node, with ``changes[node]`` replaced."""
    out = {n.name: healthy_facts(n) for n in NODES}
    for node, change in changes.items():
        out[node] = dataclasses.replace(out[node], **change)  # type: ignore[arg-type]
    return out


def check(kind: str, src: str, dst: str = "", outcome: str = "failed",
          signals: tuple[str, ...] = ()) -> CheckResult:
    test = kind.split("[")[0]
    extra = kind[len(test) + 1:-1] if "[" in kind else ""
    param = f"{src}->{dst}" if dst else src + (f"-{extra}" if extra else "")
    return CheckResult(f"tests/t.py::test_{test}[{param}]", outcome,  # type: ignore[arg-type]
                       signals, place=Place(kind, "", src, dst))


def pair_checks(a: str, b: str, kinds: tuple[str, ...] = PAIR_KINDS, both: bool = True
                ) -> list[CheckResult]:
    ways = [(a, b), (b, a)] if both else [(a, b)]
    return [check(k, s, d, signals=("pod_connectivity_failed",)) for k in kinds
            for s, d in ways]


def observe(checks: list[CheckResult], node_facts: dict[str, NodeFacts] | None = None,
            **kw: object) -> Observations:
    failing: dict[str, list[str]] = {}
    for c in checks:
        for s in c.signals:
            if c.outcome == "failed":
                failing.setdefault(s, []).append(c.nodeid)
    base: dict[str, object] = {
        "nodes": NODES, "facts": node_facts if node_facts is not None else facts(),
        "checks": tuple(checks), "signals": frozenset(failing),
        "failed_tests": {k: tuple(v) for k, v in failing.items()}, "node_port": 30080,
        "pod_paths_ok": frozenset((a.name, b.name) for a in NODES for b in NODES)}
    base.update(kw)
    return Observations(**base)  # type: ignore[arg-type]


def assert_invariant(obs: Observations) -> None:
    ranking = explain(obs)
    bad = {c.nodeid for c in obs.checks if c.outcome in ("failed", "flaky")}
    covered = {t for c in ranking.causes for t in c.tests}
    assert bad <= covered | set(ranking.unexplained)
    assert not covered & set(ranking.unexplained)


def top(obs: Observations) -> tuple[str, str | None, str | None]:
    assert_invariant(obs)
    causes = explain(obs).causes
    assert causes, "no cause"
    return causes[0].id, causes[0].node, causes[0].peer


def test_healthy_ranks_nothing_and_leaves_nothing() -> None:
    ranking = explain(observe([]))
    assert ranking.causes == ()
    assert ranking.unexplained == ()


def test_stale_fdb_names_node_and_peer_with_contrast() -> None:
    bad = {**healthy_facts(NODES[1]).vxlan_fdb, MAC["w2"]: "192.168.4.10"}
    obs = observe([*pair_checks("w1", "w2"), check("vxlan_peers", "w1")],
                  facts(w1={"vxlan_fdb": bad}))
    assert top(obs) == ("vxlan-fdb-stale", "w1", "w2")
    cause = explain(obs).causes[0]
    assert cause.confidence >= 0.9
    assert any("expected FDB" in c and "192.168.4.12" in c and "192.168.4.10" in c
               for c in cause.contrast)
    assert "tests/t.py::test_vxlan_peers[w1]" in cause.tests
    assert explain(obs).unexplained == ()


def test_stale_neighbour_and_missing_route() -> None:
    neigh = {**healthy_facts(NODES[2]).vxlan_neighbors, "10.244.1.0": "aa:00:00:00:00:99"}
    assert top(observe(pair_checks("w2", "w1"), facts(w2={"vxlan_neighbors": neigh}))) == (
        "vxlan-neighbor-stale", "w2", "w1")
    routes = tuple(r for r in healthy_facts(NODES[1]).routes if r.dst != "10.244.0.0/24")
    assert top(observe(pair_checks("w1", "cp"), facts(w1={"routes": routes}))) == (
        "pod-route-missing", "w1", "cp")


def test_a_fact_no_failing_path_shows_is_less_sure() -> None:
    bad = {**healthy_facts(NODES[1]).vxlan_fdb, MAC["w2"]: "192.168.4.10"}
    obs = observe([check("vxlan_peers", "w1")], facts(w1={"vxlan_fdb": bad}))
    cause = explain(obs).causes[0]
    assert (cause.id, cause.confidence) == ("vxlan-fdb-stale", 0.6)


def test_underlay_mtu_below_its_peers() -> None:
    mtus = {"eth0": 1400, VXLAN_DEVICE: 1450, "cni0": 1450}
    bad = [check("pod_mtu", a, b) for a, b in (("w1", "cp"), ("cp", "w1"), ("w1", "w2"),
                                               ("w2", "w1"))]
    assert top(observe(bad, facts(w1={"mtus": mtus}))) == ("mtu-mismatch", "w1", None)


def test_masquerade_missing_on_one_node() -> None:
    nat = {"nat": (f"-A FLANNEL-POSTRTG -s {NODES[2].pod_cidr} -d 10.244.0.0/16 -j RETURN",),
           "filter": ()}
    assert top(observe([check("egress_http", "w2")], facts(w2={"nft_by_table": nat}))) == (
        "masquerade-missing", "w2", None)


@pytest.mark.parametrize(("node", "table", "rule", "bad"), [
    ("w2", "mangle", "-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport "
     "30000:32767 -j DROP", [check("node_port", "cp", "w2"), check("node_port", "w1", "w2")]),
    ("w1", "raw", "-A PREROUTING -s 192.168.4.12/32 -p udp -m udp --dport 8472 -j DROP",
     pair_checks("w1", "w2")),
    ("w1", "filter", "-A FORWARD -s 10.244.1.0/24 -p udp -m udp --dport 53 -j DROP",
     [check(f"dns[{k}]", "w1", signals=("dns_timeouts",)) for k in ("cluster", "service")]),
], ids=["nodeport-mangle", "vxlan-raw", "dns-filter"])
def test_host_firewall_in_any_table(node: str, table: str, rule: str,
                                    bad: list[CheckResult]) -> None:
    f = healthy_facts(next(n for n in NODES if n.name == node))
    tables = {**f.nft_by_table, table: (*f.nft_by_table.get(table, ()), rule)}
    obs = observe(bad, facts(**{node: {"nft_by_table": tables}}))
    found = explain(obs).causes[0]
    assert (found.id, found.node) == ("host-firewall", node)
    assert found.subject == rule
    assert set(found.tests) == {c.nodeid for c in bad}


def test_firewall_rule_in_the_legacy_backend_counts_too() -> None:
    rule = "-A INPUT -p tcp --dport 30000:32767 -j REJECT"
    obs = observe([check("node_port", "cp", "w2"), check("node_port", "w1", "w2")],
                  facts(w2={"legacy_by_table": {"filter": (rule,)}}))
    assert top(obs)[:2] == ("host-firewall", "w2")


@pytest.mark.parametrize(("rule", "matches"), [
    ("-A INPUT -p udp --dport 8472 -j DROP", True),
    ("-A INPUT -p tcp --dport 8472 -j DROP", False),
    ("-A INPUT -p udp --dport 53 -j DROP", False),
    ("-A INPUT -s 192.168.4.99/32 -p udp -j DROP", False),
    ("-A INPUT ! -s 192.168.4.12/32 -p udp -j DROP", False),
    ("-A INPUT -p udp --dport 8472 -j ACCEPT", False),
    ("-A KUBE-FIREWALL -p udp -j DROP", False),
    ("-A INPUT -m conntrack --ctstate INVALID -j DROP", False),
])
def test_rule_matching(rule: str, matches: bool) -> None:
    t = Traffic("vxlan", "udp", (8472,), ("192.168.4.12",), ("192.168.4.11",))
    assert rule_matches(rule, t) is matches


def test_silent_dns_replica_is_named_by_pod() -> None:
    replicas = (ReplicaProbe("kube-system", "coredns-a", "w1", "10.244.1.5",
                             frozenset(), frozenset({"cp", "w1", "w2"})),
                ReplicaProbe("kube-system", "coredns-b", "w2", "10.244.2.5",
                             frozenset({"cp", "w1", "w2"}), frozenset()))
    bad = [check("dns[replica]", n, signals=("dns_timeouts",)) for n in ("cp", "w1", "w2")]
    obs = observe(bad, replicas=replicas)
    found = explain(obs).causes[0]
    assert (found.id, found.node, found.subject) == (
        "dns-replica-unresponsive", "w1", "kube-system/coredns-a")
    assert explain(obs).unexplained == ()


def test_replicas_silent_only_from_one_node_blame_that_node_not_a_replica() -> None:
    replicas = tuple(ReplicaProbe("kube-system", f"coredns-{n}", n, f"10.244.{i}.5",
                                  frozenset({"cp", "w1", "w2"}) - {"w1"}, frozenset({"w1"}))
                     for i, n in ((1, "w1"), (2, "w2")))
    obs = observe([check("dns[replica]", "w1", signals=("dns_timeouts",))], replicas=replicas)
    assert [c.id for c in explain(obs).causes] == ["path-unexplained"]


def test_no_fact_still_gives_a_localised_cause_with_underlay_ips() -> None:
    obs = observe(pair_checks("w1", "w2"))
    cause = explain(obs).causes[0]
    assert (cause.id, cause.node, cause.peer) == ("path-unexplained", "w1", "w2")
    assert any("192.168.4.11" in e and "192.168.4.12" in e for e in cause.evidence)
    assert cause.confidence < 0.5
    assert "both ways" in cause.summary


def test_localisation_reduces_to_node_pair_direction_and_target() -> None:
    one_way = pair_loci(pair_checks("w1", "w2", both=False), PAIR_KINDS)
    assert [(x.node, x.peer, x.direction) for x in one_way] == [("w1", "w2", "w1->w2 only")]
    node = pair_loci(pair_checks("w1", "w2") + pair_checks("w1", "cp"), PAIR_KINDS)
    assert [(x.node, x.peer, x.direction) for x in node] == [("w1", None, "at")]
    ports = target_loci([check("node_port", s, "w2") for s in ("cp", "w1")], ("node_port",),
                        "NodePort")
    assert [(x.node, x.direction) for x in ports] == [("w2", "to")]
    egress = node_loci([check("egress_http", "w1"), check("egress_http", "w2")],
                       ("egress_http",), "egress")
    assert [x.node for x in egress] == ["w1", "w2"]


def test_flaky_checks_are_explained_or_listed() -> None:
    bad = {**healthy_facts(NODES[1]).vxlan_fdb, MAC["w2"]: "192.168.4.10"}
    flaky = check("service_cluster_ip", "w1", outcome="flaky")
    obs = observe([*pair_checks("w1", "w2"), flaky], facts(w1={"vxlan_fdb": bad}))
    assert flaky.nodeid in explain(obs).causes[0].tests


@pytest.mark.parametrize("seed", range(20))
def test_invariant_on_random_matrices(seed: int) -> None:
    rng = random.Random(seed)
    pairs = [(a.name, b.name) for a, b in itertools.product(NODES, NODES)]
    bad = [check(k, a, b, rng.choice(["failed", "flaky"]), ("pod_connectivity_failed",))
           for k in (*PAIR_KINDS, "node_port", "pod_mtu") for a, b in pairs
           if rng.random() < 0.2]
    bad += [check(k, n.name, outcome=rng.choice(["failed", "flaky"]))
            for k in (*NODE_KINDS, "kernel_prerequisites") for n in NODES if rng.random() < 0.2]
    bad += [CheckResult("tests/t.py::test_placeless", "failed", ("dns_timeouts",))]
    assert_invariant(observe(bad, facts(w1={"vxlan_fdb": {}})))


NFT_RULESET = """table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy accept;
		counter packets 0 bytes 0 jump KUBE-FIREWALL
	}
}
table inet hostfw {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state invalid drop
		ip saddr 192.168.4.12 udp dport 8472 counter packets 0 bytes 0 drop
		tcp dport { 8080, 30000-32767 } ct state new reject
	}
}
table ip kube-proxy {
	chain filter-input {
		meta l4proto tcp th dport 30080 reject
	}
}
"""


def test_native_nftables_tables_are_read_in_iptables_words() -> None:
    tables = parse_nft(NFT_RULESET.splitlines())
    assert set(tables) == {"inet hostfw", "ip kube-proxy"}
    rules = tables["inet hostfw"]
    assert rules[1].startswith("-A input -s 192.168.4.12 -p udp --dport 8472 -j DROP [nft: ")
    assert rules[2].startswith("-A input -p tcp --dport 8080,30000:32767 --ctstate NEW "
                               "-j REJECT")
    vxlan = Traffic("vxlan", "udp", (8472,), ("192.168.4.12",), ("192.168.4.11",))
    nodeport = Traffic("nodeport", "tcp", (30080,))
    assert [rule_matches(r, vxlan) for r in rules] == [False, True, False]
    assert [rule_matches(r, nodeport) for r in rules] == [False, False, True]


@pytest.mark.parametrize(("bad", "table"), [
    (pair_checks("w1", "w2"), "inet hostfw"),
    ([check("node_port", "cp", "w1"), check("node_port", "w2", "w1")], "inet hostfw"),
])
def test_host_firewall_in_a_native_nftables_table(bad: list[CheckResult], table: str) -> None:
    obs = observe(bad, facts(w1={"native_by_table": parse_nft(NFT_RULESET.splitlines())}))
    found = explain(obs).causes[0]
    assert (found.id, found.node) == ("host-firewall", "w1")
    assert f"nftables table {table}" in found.evidence[0]
    assert "kube-proxy" not in " ".join(found.evidence)  # its own rules are no firewall


def test_a_signal_counts_only_through_checks_the_cause_breaks() -> None:
    # Old upstream timeouts in CoreDNS's log explain no failing lookup of a Service name.
    logs = "\n".join(["[ERROR] plugin/errors: 2 example.com. A: read udp "
                      "10.244.1.2:5290->192.168.4.1:53: i/o timeout"] * 3)
    dns = check("dns[service]", "w2", signals=("dns_timeouts",))
    obs = observe([*pair_checks("w1", "w2"), dns], coredns_logs=logs)
    causes = explain(obs).causes
    assert (causes[0].id, causes[0].node, causes[0].peer) == ("path-unexplained", "w1", "w2")
    assert "upstream-dns-unreachable" not in [c.id for c in causes]
    external = check("dns[external]", "w2", signals=("dns_timeouts",))
    ranked = explain(observe([external], coredns_logs=logs)).causes
    assert [c.id for c in ranked] == ["upstream-dns-unreachable"]


def test_a_node_firewall_against_its_peers_is_found_from_a_node_locus() -> None:
    rules = tuple(f"-A INPUT -s {ip}/32 -p udp -m udp --dport 8472 -j DROP"
                  for ip in ("192.168.4.10", "192.168.4.12"))
    rule = rules[0]
    f = healthy_facts(NODES[1])
    bad = [*pair_checks("w1", "w2"), *pair_checks("w1", "cp")]
    obs = observe(bad, facts(w1={"nft_by_table": {**f.nft_by_table, "filter": rules}}))
    found = explain(obs).causes[0]
    assert (found.id, found.node, found.peer, found.subject) == ("host-firewall", "w1", None,
                                                                 rule)
    assert set(found.tests) == {c.nodeid for c in bad}


def test_a_route_through_the_wrong_vtep_is_no_route_to_the_peer() -> None:
    routes = tuple(Route(r.dst, r.dev, "10.244.0.0") if r.dst == "10.244.2.0/24" else r
                   for r in healthy_facts(NODES[1]).routes)
    obs = observe(pair_checks("w1", "w2"), facts(w1={"routes": routes}))
    assert top(obs) == ("pod-route-missing", "w1", "w2")
    assert any("via 10.244.2.0" in c and "via 10.244.0.0" in c
               for c in explain(obs).causes[0].contrast)
