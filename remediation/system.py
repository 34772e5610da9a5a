"""Stage ``system``: the node's kernel switches and netfilter state kube-proxy depends on."""

from __future__ import annotations

import json
from dataclasses import dataclass

from netdoctor.repair.model import Action, Level, Plan, RepairContext
from netdoctor.rootcause import nodefindings
from netdoctor.rootcause.facts import SYSCTL_BRIDGE_NF, SYSCTL_IP_FORWARD, NodeFacts

from ._common import HookOptions, node_cni, read_facts, restarted_or_failing, run_plan

WANTED = {SYSCTL_IP_FORWARD: "1", SYSCTL_BRIDGE_NF: "1"}
SYSCTL_FILE = "/host/etc/sysctl.d/90-netdoctor-kubernetes.conf"
# Base chains iptables-nft itself creates, by table: anything else in these tables
# (another tool writing nf_tables directly) makes iptables-nft refuse the table.
IPTABLES_TYPES = {"filter": "filter", "nat": "nat", "raw": "filter", "security": "filter",
                  "mangle": "filter"}


def _wrong(facts: NodeFacts, cni: str = "") -> dict[str, str]:
    """The kernel switches the node judgments find wrong on a ``cni`` cluster, and the
    value each needs."""
    return dict(f.setting for f in nodefindings.kernel(facts, cni) if f.setting)


def _persist_cmd(extra: dict[str, str] | None = None) -> str:
    # Written whole (never appended), and only where sysctl.d is already the node's way.
    body = "".join(f"{k.replace('/', '.')} = {v}\\n"
                   for k, v in {**WANTED, **(extra or {})}.items())
    return (f"if [ -d /host/etc/sysctl.d ]; then printf '# written by netdoctor --remediate\\n"
            f"{body}' > {SYSCTL_FILE}; fi")


@dataclass
class KernelSysctls:
    """ip_forward and bridge-nf-call-iptables on, rp_filter not strict (runtime and, where it
    belongs, persistent): whatever :func:`netdoctor.rootcause.nodefindings.kernel` finds."""

    opts: HookOptions
    name: str = "kernel-sysctls"
    stage: str = "system"
    causes: frozenset[str] = frozenset({"ip-forward-off", "br-netfilter-off",
                                        "rp-filter-strict"})
    level: Level = "node"
    disruptive: bool = False
    deadline: float = 30.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        plans = []
        for node in sorted(ctx.nodes()):
            facts = read_facts(ctx, node)
            wrong = _wrong(facts, node_cni(facts, self.opts.cni))
            if not wrong:
                continue
            actions = []
            for key, value in wrong.items():
                dotted, old = key.replace("/", "."), facts.sysctls.get(key)
                cmd = f"echo {value} > /proc/sys/{key}"
                undo = f"echo {old} > /proc/sys/{key}" if old != "missing" else ""
                if old == "missing":
                    load = "chroot /host modprobe br_netfilter || modprobe br_netfilter"
                    cmd = f"{{ {load}; }}; {cmd}"
                actions.append(Action(f"{dotted}: {old} -> {value}", cmd,
                                      touches=f"sysctl {dotted}", undo=undo))
            actions.append(self._persist(wrong))
            plans.append(Plan(self.name, node, tuple(actions)))
        return plans

    def _persist(self, wrong: dict[str, str]) -> Action:
        backup = f"{self.opts.backup_dir}/sysctl.d-90-netdoctor-kubernetes.conf"
        return Action(
            f"persist in {SYSCTL_FILE[5:]} when /etc/sysctl.d exists (a previous one saved to "
            f"{backup[5:]})",
            f"mkdir -p {self.opts.backup_dir} && {{ [ -e {backup} ] || [ ! -e {SYSCTL_FILE} ] "
            f"|| cp -a {SYSCTL_FILE} {backup}; }} && {_persist_cmd(wrong)}",
            touches=f"file {SYSCTL_FILE[5:]}",
            undo=f"if [ -e {backup} ]; then cp -a {backup} {SYSCTL_FILE}; "
                 f"else rm -f {SYSCTL_FILE}; fi")

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return run_plan(ctx, plan, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        facts = read_facts(ctx, plan.node)
        wrong = [f"{k}={facts.sysctls.get(k)}"
                 for k in _wrong(facts, node_cni(facts, self.opts.cni))]
        return f"still {', '.join(wrong)}" if wrong else None


def _flush_kube_chains(backend: str) -> str:
    """Shell that removes every KUBE-* chain (and the jumps to them) from ``backend``."""
    ipt = f"iptables-{backend} -w"
    guard = ("grep -qx \"$t\" /proc/net/ip_tables_names 2>/dev/null || continue; "
             if backend == "legacy" else "")
    return (f"for t in nat filter mangle; do {guard}"
            f"iptables-{backend}-save -t \"$t\" 2>/dev/null | grep -E "
            "'^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j KUBE-' | "
            f"sed 's/^-A /-D /' | while read -r rule; do eval {ipt} -t \"$t\" \"$rule\"; done; "
            f"chains=$(iptables-{backend}-save -t \"$t\" 2>/dev/null | "
            "sed -n 's/^:\\(KUBE-[^ ]*\\) .*/\\1/p'); "
            f"for c in $chains; do {ipt} -t \"$t\" -F \"$c\"; done; "
            f"for c in $chains; do {ipt} -t \"$t\" -X \"$c\"; done; done")


@dataclass
class StaleKubeRules:
    """KUBE-* rules left in the iptables backend kube-proxy does not use."""

    opts: HookOptions
    name: str = "stale-kube-rules"
    stage: str = "system"
    causes: frozenset[str] = frozenset({"iptables-mixed-backend"})
    level: Level = "node"
    disruptive: bool = False
    deadline: float = 30.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        plans = []
        for node in sorted(ctx.nodes()):
            facts = read_facts(ctx, node)
            mixed = [x for x in nodefindings.iptables(facts) if x.id in self.causes]
            if not mixed or mixed[0].setting is None:
                continue
            stale = mixed[0].setting[1]
            count = len(facts.kube_rules(stale))
            save = f"{self.opts.backup_dir}/iptables-{stale}-{node}.rules"
            plans.append(Plan(self.name, node, (
                Action(f"save the {stale} tables to {save[5:]}",
                       f"mkdir -p {self.opts.backup_dir} && "
                       f"{{ [ -e {save} ] || iptables-{stale}-save > {save}; }}", changes=0),
                Action(f"remove {count} stale KUBE-* rules and their chains from the {stale} "
                       "backend (kube-proxy writes the other one)", _flush_kube_chains(stale),
                       touches=f"iptables-{stale} KUBE-* chains",
                       undo=f"iptables-{stale}-restore < {save}"),
            ), backups=(save[5:],)))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return run_plan(ctx, plan, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        facts = read_facts(ctx, plan.node)
        if any(x.id in self.causes for x in nodefindings.iptables(facts)):
            return "KUBE-* rules are still in both backends"
        return None


CHAINS_SCRIPT = "nft -j list chains ip 2>/dev/null"


def _recreate_chain(table: str, chain: str, save: str) -> str:
    """Shell that puts one chain back as saved (``nft list table``), replacing a chain of
    the same name made since (iptables-nft makes its own once the foreign one is gone)."""
    return (f"{{ nft flush chain ip {table} {chain} && nft delete chain ip {table} {chain}; }}"
            f" 2>/dev/null || true; {{ echo 'table ip {table} {{'; "
            f"awk '/^\\tchain {chain} {{/,/^\\t}}/' {save}; echo '}}'; }} | nft -f -")


def foreign_chains(nft_json: str) -> list[tuple[str, str, str]]:
    """(table, chain, type) of base chains in iptables' tables that iptables did not make.

    Example:
        >>> foreign_chains('{"nftables": [{"chain": {"family": "ip", "table": "filter", '
        ...                '"name": "OUTPUT", "type": "route", "hook": "output"}}]}')
        [('filter', 'OUTPUT', 'route')]
    """
    try:
        items = json.loads(nft_json).get("nftables", [])
    except ValueError:
        return []
    found = []
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if not chain or "hook" not in chain or chain.get("family") != "ip":
            continue
        table, kind = chain.get("table", ""), chain.get("type", "")
        expected = IPTABLES_TYPES.get(table)
        legit_route = table == "mangle" and chain.get("name") == "OUTPUT" and kind == "route"
        if expected and kind != expected and not legit_route:
            found.append((table, str(chain.get("name")), kind))
    return found


@dataclass
class ForeignNftChain:
    """A base chain in an iptables table that iptables-nft cannot manage, where kube-proxy
    fails because of it."""

    opts: HookOptions
    name: str = "foreign-nft-chain"
    stage: str = "system"
    causes: frozenset[str] = frozenset({"netfilter-unmanageable"})
    level: Level = "node"
    disruptive: bool = False
    deadline: float = 30.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        proxies = ctx.list("pods", selector="k8s-app=kube-proxy")
        failing = {p["spec"].get("nodeName") for p in proxies if restarted_or_failing(p)}
        plans = []
        for node in sorted(n for n in ctx.nodes() if n in failing):
            if not any(x.id in self.causes for x in nodefindings.iptables(read_facts(ctx, node))):
                continue
            _, out, _ = ctx.node_read(node, CHAINS_SCRIPT, 10.0)
            for table, chain, kind in foreign_chains(out):
                save = f"{self.opts.backup_dir}/nft-ip-{table}-{node}.nft"
                plans.append(Plan(self.name, node, (
                    Action(f"save table ip {table} to {save[5:]}",
                           f"mkdir -p {self.opts.backup_dir} && "
                           f"{{ [ -e {save} ] || nft list table ip {table} > {save}; }}",
                           changes=0),
                    Action(f"delete base chain ip {table} {chain} (type {kind}): iptables-nft "
                           "cannot manage the table while it is there",
                           f"nft flush chain ip {table} {chain} && "
                           f"nft delete chain ip {table} {chain}",
                           touches=f"nft chain ip {table} {chain}",
                           undo=_recreate_chain(table, chain, save)),
                ), backups=(save[5:],)))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return run_plan(ctx, plan, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        _, out, _ = ctx.node_read(plan.node, CHAINS_SCRIPT, 10.0)
        left = foreign_chains(out)
        return f"still there: {left}" if left else None
