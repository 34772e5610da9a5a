"""Commands to confirm and fix each ranked root cause."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netdoctor.rootcause import nodefindings, pathfacts, pathrules, ranking, rules
from netdoctor.rootcause.model import RootCause
from netdoctor.rootcause.playbook import commands

NODE_CAUSES = ("cni-config-shadowed", "cni-bridge-conflict", "pod-ip-outside-podcidr",
               "vxlan-incomplete", "ip-forward-off", "br-netfilter-off",
               "iptables-mixed-backend", "netfilter-unmanageable", "vxlan-fdb-stale",
               "vxlan-neighbor-stale", "pod-route-missing", "masquerade-missing",
               "mtu-mismatch", "host-firewall", "dns-replica-unresponsive",
               "path-unexplained", "rp-filter-strict")
CLUSTER_CAUSES = ("flannel-missing", "cni-agent-missing", "coredns-cannot-reach-api",
                  "upstream-dns-unreachable",
                  "service-selector-matches-nothing")


def test_every_cause_the_rules_can_rank_has_commands() -> None:
    ranked: set[str] = set()
    for module in (rules, pathrules, pathfacts, nodefindings, ranking):
        source = Path(str(module.__file__)).read_text()
        ranked |= set(re.findall(r'(?:Candidate|Finding)\(\s*"([a-z-]+)"', source))
        ranked |= set(re.findall(r'_ID = "([a-z-]+)"', source))
        ranked |= set(re.findall(r'\(\s*"([a-z-]+)", SYSCTL_', source))
    ranked |= set(re.findall(r'"([a-z-]+)": "(?:no route|stale)', Path(
        str(pathrules.__file__)).read_text()))
    assert ranked == set(NODE_CAUSES) | set(CLUSTER_CAUSES)
    for cause in ranked:
        assert commands(cause, "n1", "s", "n2").confirm, cause


@pytest.mark.parametrize("cause", NODE_CAUSES)
def test_node_causes_name_their_node(cause: str) -> None:
    book = commands(cause, "worker-7", "00-bridge.conflist")
    assert book.confirm
    assert all("worker-7" in c for c in book.confirm)
    assert all("latest" not in c for c in (*book.confirm, *book.fix))


@pytest.mark.parametrize("cause", CLUSTER_CAUSES)
def test_cluster_causes(cause: str) -> None:
    book = commands(cause, None, "shop/cart")
    assert book.confirm
    assert book.fix


def test_subjects_make_commands_exact() -> None:
    assert "mv /etc/cni/net.d/00-bridge.conflist " in commands(
        "cni-config-shadowed", "n2", "00-bridge.conflist").fix[0]
    assert commands("service-selector-matches-nothing", None, "shop/cart").confirm[0] == (
        "kubectl -n shop get service cart -o jsonpath='{.spec.selector}'")
    assert commands("no-such-cause", "n1", "") == commands("no-such-cause", None, "")


def test_summary_entry_carries_the_commands() -> None:
    entry = RootCause("ip-forward-off", "n3", "n3: net.ipv4.ip_forward=0", (), (), 0).to_json()
    assert entry["confirm"] == [
        "kubectl debug node/n3 -it --image=busybox:1.36 -- cat /proc/sys/net/ipv4/ip_forward"]
    assert "sysctl -w net.ipv4.ip_forward=1" in str(entry["fix"])
