"""Stage ``system``: a host firewall rule that drops CoreDNS's traffic to the API server.

A rule qualifies for automatic deletion only when all of this holds:

* it is in the ``filter`` table of the backend (nft or legacy) that holds it, in a chain
  that is neither ``KUBE-*`` nor ``FLANNEL*`` (those belong to kube-proxy and Flannel);
* its target is ``DROP`` or ``REJECT``;
* its destination is exactly one API server address (``-d <ip>/32``): an address of the
  ``kubernetes`` Endpoints in ``default`` or the ClusterIP of the ``kubernetes`` Service;
* any protocol is tcp, any ``--dport`` is one of the API server's ports, and any ``-s``
  covers the CoreDNS pods of that node (their IPs or the node's podCIDR);
* it uses nothing else than ``-s -d -p -i -o --dport``, the ``tcp``/``udp``/``comment``
  modules, ``--ctstate`` including ``NEW`` and ``--reject-with``, and no negation.

A DROP/REJECT towards the API server that does not fit (another module, a negation) is
reported as a manual step with the exact command; nothing else is ever touched, and no
chain is flushed.

Example:
    >>> api = ApiServer(frozenset({"192.168.4.10", "10.96.0.1"}), frozenset({6443, 443}))
    >>> rule = ("-A FORWARD -s 10.244.0.0/24 -d 192.168.4.10/32 -p tcp -m tcp --dport 6443 "
    ...         '-m comment --comment "host firewall" -j DROP')
    >>> classify(rule, api, ("10.244.0.0/24",))
    'delete'
    >>> delete_command("nft", rule)
    "iptables-nft -w -t filter -D FORWARD -s 10.244.0.0/24 -d 192.168.4.10/32 -p tcp -m tcp \
--dport 6443 -m comment --comment 'host firewall' -j DROP"
    >>> classify(rule.replace("-s 10.244", "! -s 10.244"), api, ("10.244.0.0/24",))
    'manual'
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from netdoctor.cluster.profile import COREDNS_SELECTOR, find_by_label_or_name
from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import HookOptions, crashlooping, read_facts, run_plan

Verdict = Literal["delete", "manual", "none"]
BACKENDS = ("nft", "legacy")
OWNED_CHAINS = ("KUBE-", "FLANNEL")
# Options a qualifying rule may use, and whether each takes a value.
ALLOWED = {"-A": True, "-s": True, "-d": True, "-p": True, "-i": True, "-o": True,
           "-m": True, "--dport": True, "--comment": True, "--ctstate": True, "-j": True,
           "--reject-with": True}
MODULES = frozenset({"tcp", "udp", "comment", "conntrack"})


@dataclass(frozen=True)
class ApiServer:
    """Where the API server is reached: its addresses and ports."""

    ips: frozenset[str]
    ports: frozenset[int]


def api_server(ctx: RepairContext) -> ApiServer:
    """The ``kubernetes`` Endpoints addresses and Service ClusterIP (with their ports)."""
    ips: set[str] = set()
    ports: set[int] = set()
    for ep in ctx.list("endpoints", namespace="default"):
        if ep["metadata"]["name"] == "kubernetes":
            for subset in ep.get("subsets") or []:
                ips |= {a["ip"] for a in subset.get("addresses") or [] if a.get("ip")}
                ports |= {int(p["port"]) for p in subset.get("ports") or [] if p.get("port")}
    for svc in ctx.list("services", namespace="default"):
        if svc["metadata"]["name"] == "kubernetes":
            spec = svc.get("spec", {})
            ips |= {ip for ip in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]
                    if ip and ip != "None"}
            ports |= {int(p["port"]) for p in spec.get("ports") or [] if p.get("port")}
    return ApiServer(frozenset(ips), frozenset(ports))


def _options(tokens: list[str]) -> dict[str, list[str]] | None:
    """Option -> values; None when the rule negates something or takes an option not
    in :data:`ALLOWED`."""
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        opt = tokens[i]
        if opt not in ALLOWED or i + 1 >= len(tokens):
            return None
        out.setdefault(opt, []).append(tokens[i + 1])
        i += 2
    return out


def _host(value: str) -> str | None:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    return str(net.network_address) if net.num_addresses == 1 else None


def _covers(source: str, pods: Iterable[str]) -> bool:
    try:
        net = ipaddress.ip_network(source, strict=False)
        return any(net.overlaps(ipaddress.ip_network(p, strict=False)) for p in pods)
    except ValueError:
        return False


def classify(rule: str, api: ApiServer, pods: Iterable[str]) -> Verdict:
    """Whether a ``-A`` filter rule is one to delete, one to report, or not ours.

    ``pods`` are the CIDRs (or single IPs) of the CoreDNS pods that crash-loop on the node.
    """
    try:
        tokens = shlex.split(rule)
    except ValueError:
        return "none"
    if len(tokens) < 2 or tokens[0] != "-A" or tokens[1].startswith(OWNED_CHAINS):
        return "none"
    target = tokens[tokens.index("-j") + 1] if "-j" in tokens[:-1] else ""
    dests = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "-d"]
    if target not in ("DROP", "REJECT") or len(dests) != 1 or _host(dests[0]) not in api.ips:
        return "none"
    opts = _options(tokens)
    if opts is None or "!" in tokens:
        return "manual"
    if any(v not in ("tcp",) for v in opts.get("-p", [])):
        return "none"  # the API server speaks tcp: this rule does not block it
    if any(not p.isdigit() or int(p) not in api.ports for p in opts.get("--dport", [])):
        return "none"
    if any(not _covers(s, pods) for s in opts.get("-s", [])):
        return "none"
    if any(m not in MODULES for m in opts.get("-m", [])) or any(
            "NEW" not in s.split(",") for s in opts.get("--ctstate", [])):
        return "manual"
    return "delete"


def delete_command(backend: str, rule: str) -> str:
    """The exact ``iptables-<backend> -t filter -D`` that removes one ``-A`` rule."""
    tokens = shlex.split(rule)
    return (f"iptables-{backend} -w -t filter -D {shlex.quote(tokens[1])} "
            + " ".join(shlex.quote(t) for t in tokens[2:]))


def _delete_or_none(backend: str, rule: str) -> str | None:
    try:
        return delete_command(backend, rule)
    except ValueError:
        return None


def blocking_rules(ctx: RepairContext, node: str, api: ApiServer, pods: Iterable[str]
                   ) -> list[tuple[str, str, Verdict]]:
    """(backend, rule, verdict) of the node's filter rules that drop traffic to the API."""
    if not api.ips:
        return []
    facts = read_facts(ctx, node)
    pods = tuple(pods)
    found: list[tuple[str, str, Verdict]] = []
    for backend in BACKENDS:
        for rule in facts.table_rules(backend, "filter"):
            verdict = classify(rule, api, pods)
            if verdict != "none":
                found.append((backend, rule, verdict))
    return found


def coredns_nodes(ctx: RepairContext) -> dict[str, tuple[str, ...]]:
    """Ready nodes with crash-looping CoreDNS pods -> the pods' IPs and the node's podCIDR."""
    dep = find_by_label_or_name("Deployment", ctx.list("deployments"), COREDNS_SELECTOR,
                                "coredns")
    if dep is None:
        return {}
    ready = ctx.nodes()
    out: dict[str, list[str]] = {}
    for pod in ctx.list("pods", namespace=dep.namespace, selector=dep.selector):
        node = pod.get("spec", {}).get("nodeName", "")
        if node in ready and crashlooping(pod):
            ips = out.setdefault(node, [c for c in [ready[node]] if c])
            ip = pod.get("status", {}).get("podIP")
            if ip:
                ips.append(ip)
    return {n: tuple(v) for n, v in sorted(out.items())}


@dataclass
class ApiFirewallDrop:
    """Delete the host firewall rules that drop crash-looping CoreDNS pods' traffic to the
    API server, on their nodes, after saving that backend's tables; see the module's rules
    for what qualifies. Runs in stage ``system``, before CoreDNS is restarted."""

    opts: HookOptions
    name: str = "api-firewall-drop"
    stage: str = "system"
    causes: frozenset[str] = frozenset({"coredns-cannot-reach-api"})
    level: Level = "node"
    disruptive: bool = True
    deadline: float = 30.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        nodes = coredns_nodes(ctx)
        api = api_server(ctx) if nodes else ApiServer(frozenset(), frozenset())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        plans = []
        for node, pods in nodes.items():
            found = blocking_rules(ctx, node, api, pods)
            unclear = [f"{delete_command(b, r)}  # {b}: {r}" for b, r, v in found
                       if v == "manual"]
            if unclear:
                plans.append(Plan(self.name, node, (), manual=(
                    f"on {node}, filter rules dropping traffic to the API server "
                    f"({', '.join(sorted(api.ips))}) use matches netdoctor does not judge; "
                    f"check, then: {'; '.join(unclear)}")))
            for backend in BACKENDS:
                rules = [r for b, r, v in found if b == backend and v == "delete"]
                if not rules:
                    continue
                save = f"{self.opts.backup_dir}/iptables-{backend}-{node}-{stamp}.rules"
                actions = [Action(f"save the {backend} tables to {save[5:]}",
                                  f"mkdir -p {shlex.quote(self.opts.backup_dir)} && "
                                  f"{{ [ -e {save} ] || iptables-{backend}-save > {save}; }} "
                                  f"&& test -s {save}", changes=0)]
                # One undo puts the whole filter table back as saved, rule order included.
                actions += [Action(f"delete filter rule `{r}` ({backend}): it drops CoreDNS's "
                                   "traffic to the API server", delete_command(backend, r),
                                   touches=f"iptables-{backend} filter rule",
                                   undo="" if i else f"iptables-{backend}-restore -T filter "
                                                     f"< {save}")
                            for i, r in enumerate(rules)]
                plans.append(Plan(self.name, node, tuple(actions), disruptive=True,
                                  backups=(save[5:],)))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return run_plan(ctx, plan, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        deleted = {a.command for a in plan.actions[1:]}
        facts = read_facts(ctx, plan.node)
        left = [r for b in BACKENDS for r in facts.table_rules(b, "filter")
                if r.startswith("-A ") and _delete_or_none(b, r) in deleted]
        return f"still there: {'; '.join(left)}" if left else None
