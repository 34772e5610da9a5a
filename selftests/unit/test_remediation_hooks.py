"""The remediation hooks against an in-memory cluster: what each plans on a faulty state
(the exact commands and patches), nothing on a healthy one, manual steps where the intent
is unclear, apply + verify, a second plan that is empty, and the runner's guards."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netdoctor.repair.model import Action, Level, Plan, RemediationHook, RepairContext
from netdoctor.repair.policy import Decision
from netdoctor.repair.runner import Budget, Outcome, RemediationLog, apply, make_plan, planned_steps
from remediation import REGISTRY, default_hooks
from remediation._common import HookOptions
from remediation.cni import BridgeAddress, FlannelDaemonSet, StrayCniConfig
from remediation.coredns import CoreDnsRestart
from remediation.firewall import ApiFirewallDrop, ApiServer, classify, delete_command
from remediation.kube_proxy import KubeProxyRestart
from remediation.services import ServiceSelector
from remediation.system import CHAINS_SCRIPT, ForeignNftChain, KernelSysctls, StaleKubeRules
from selftests.fakecontext import FakeContext, add_rules, pod, ready, sample, workload

OPTS = HookOptions(run_id="r1", flannel_manifest=Path("/m/kube-flannel.yml"))
FIX_SELECTORS = HookOptions(run_id="r1", flannel_manifest=Path("/m/kube-flannel.yml"),
                            fix_selectors=True)
BACKUP = "/host/var/backups/netdoctor/r1"
API_IP, CLUSTER_IP = "192.168.4.10", "10.96.0.1"
NODES = {"worker-1": "10.244.1.0/24", "worker-2": "10.244.2.0/24"}
DNS = {"k8s-app": "kube-dns"}
BLOCK = ("-A FORWARD -s 10.244.1.0/24 -d 192.168.4.10/32 -p tcp -m tcp --dport 6443 "
         "-m comment --comment netdoctor-lab-fault -j DROP")
BLOCK_IN = BLOCK.replace("-A FORWARD", "-A INPUT")
DELETE = ("iptables-nft -w -t filter -D FORWARD -s 10.244.1.0/24 -d 192.168.4.10/32 -p tcp "
          "-m tcp --dport 6443 -m comment --comment netdoctor-lab-fault -j DROP")
DELETE_IN = DELETE.replace("-D FORWARD", "-D INPUT")


def api_objects() -> dict[str, list[dict[str, Any]]]:
    """CoreDNS, the kubernetes Service/Endpoints and kube-proxy, all healthy."""
    return {
        "deployments": [{**workload("kube-system", "coredns", DNS), "metadata": {
            "namespace": "kube-system", "name": "coredns", "labels": DNS}}],
        "daemonsets": [workload("kube-system", "kube-proxy", {"k8s-app": "kube-proxy"}),
                       workload("kube-flannel", "kube-flannel-ds", {"app": "flannel"})],
        "services": [
            {"metadata": {"namespace": "default", "name": "kubernetes"},
             "spec": {"clusterIP": CLUSTER_IP, "ports": [{"port": 443}]}},
            {"metadata": {"namespace": "kube-system", "name": "kube-dns"},
             "spec": {"clusterIP": "10.96.0.10", "selector": DNS, "ports": [{"port": 53}]}}],
        "endpoints": [{"metadata": {"namespace": "default", "name": "kubernetes"},
                       "subsets": [{"addresses": [{"ip": API_IP}],
                                    "ports": [{"port": 6443}]}]}],
        "pods": [pod("kube-system", "coredns-a", "worker-1", DNS, "10.244.1.5"),
                 pod("kube-system", "kube-proxy-1", "worker-1", {"k8s-app": "kube-proxy"},
                     "192.168.4.21", host_network=True),
                 pod("kube-system", "kube-proxy-2", "worker-2", {"k8s-app": "kube-proxy"},
                     "192.168.4.22", host_network=True)],
    }


def healthy() -> FakeContext:
    return FakeContext(nodes_=dict(NODES), objects=api_objects(),
                       facts={"worker-1": sample("healthy-worker-1"),
                              "worker-2": sample("healthy-worker-2")})


def coredns_blocked(*rules: str, section: str = "nft-save") -> FakeContext:
    """CoreDNS crash-looping on worker-1, whose filter table holds ``rules``."""
    ctx = healthy()
    ctx.objects["pods"][0] = pod("kube-system", "coredns-a", "worker-1", DNS, "10.244.1.5",
                                 ok=False, restarts=4)
    ctx.facts["worker-1"] = add_rules(ctx.facts["worker-1"], section, "filter", list(rules))
    ctx.signals = frozenset({"coredns_crashloop", "service_endpoints_missing"})
    ctx.causes = (("coredns-cannot-reach-api", "worker-1"),)

    def recreated(kind: str, ns: str, name: str) -> None:
        ctx.objects["pods"][0] = pod("kube-system", "coredns-b", "worker-1", DNS, "10.244.1.6")
    ctx.after_restart = recreated
    return ctx


def run(hooks: list[Any], ctx: FakeContext, decision: Decision, *, changes: int = 12,
        per_node: int = 4, log: RemediationLog | None = None) -> Outcome:
    """Plan, then (when the decision applies) apply that plan, as the plugin does once
    the operator said yes."""
    log = log or RemediationLog(None)
    chosen: list[RemediationHook] = hooks
    plans, problems = make_plan(chosen, ctx, log)
    if decision.mode != "applied":
        return Outcome(decision.mode, decision.reason, problems + planned_steps(plans))
    return apply(chosen, ctx, decision, plans, budget=Budget(per_node, changes), log=log)


def rules_of(ctx: FakeContext, node: str) -> list[str]:
    return [ln for ln in ctx.facts[node] if ln.startswith("-A ")]


# -- api-firewall-drop ----------------------------------------------------------------------
def test_api_drop_deletes_exactly_the_rules_after_a_backup() -> None:
    ctx = coredns_blocked(BLOCK_IN, BLOCK)
    before = rules_of(ctx, "worker-1")
    hook = ApiFirewallDrop(OPTS)
    [plan] = hook.plan(ctx)
    assert (plan.node, plan.disruptive, plan.manual) == ("worker-1", True, "")
    backup = plan.backups[0]
    assert backup.startswith("/var/backups/netdoctor/r1/iptables-nft-worker-1-")
    assert backup.endswith("Z.rules")
    assert [a.command for a in plan.actions[1:]] == [DELETE_IN, DELETE]
    assert plan.actions[0].command == (
        f"mkdir -p {BACKUP} && {{ [ -e /host{backup} ] || iptables-nft-save > /host{backup}; }}"
        f" && test -s /host{backup}")
    hook.apply(ctx, plan)
    [(node, script)] = ctx.execs
    assert node == "worker-1"
    assert script.index("iptables-nft-save >") < script.index("-D INPUT")  # backup first
    assert BLOCK in ctx.files[f"/host{backup}"]
    assert rules_of(ctx, "worker-1") == [r for r in before if r not in (BLOCK, BLOCK_IN)]
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []


def test_api_drop_in_legacy_and_to_the_cluster_ip() -> None:
    reject = (f"-A OUTPUT -d {CLUSTER_IP}/32 -p tcp -m tcp --dport 443 "
              "-j REJECT --reject-with icmp-port-unreachable")
    ctx = coredns_blocked(reject, section="legacy-save")
    [plan] = ApiFirewallDrop(OPTS).plan(ctx)
    assert "iptables-legacy-save >" in plan.actions[0].command
    assert [a.command for a in plan.actions[1:]] == [
        f"iptables-legacy -w -t filter -D OUTPUT -d {CLUSTER_IP}/32 -p tcp -m tcp --dport 443 "
        "-j REJECT --reject-with icmp-port-unreachable"]


@pytest.mark.parametrize("rule", [
    BLOCK.replace("-j DROP", "-j ACCEPT"),                       # not a drop
    BLOCK.replace("192.168.4.10/32", "192.168.4.11/32"),         # another host
    BLOCK.replace("192.168.4.10/32", "192.168.4.0/24"),          # not exactly the API
    BLOCK.replace("--dport 6443", "--dport 22"),                 # another port
    BLOCK.replace("-p tcp -m tcp", "-p udp -m udp"),             # the API speaks tcp
    BLOCK.replace("10.244.1.0/24", "192.168.4.21/32"),           # not from the pods
    BLOCK.replace("-A FORWARD", "-A KUBE-FORWARD"),              # kube-proxy's
    BLOCK.replace("-A FORWARD", "-A FLANNEL-FWD"),               # Flannel's
])
def test_api_drop_leaves_other_rules_alone(rule: str) -> None:
    ctx = coredns_blocked(rule)
    assert ApiFirewallDrop(OPTS).plan(ctx) == []
    assert ctx.execs == []


@pytest.mark.parametrize("rule", [
    BLOCK.replace("-s 10.244.1.0/24", "! -s 10.244.9.0/24"),
    BLOCK.replace("-j DROP", "-m owner --uid-owner 0 -j DROP"),
    BLOCK.replace("-m tcp", "-m conntrack --ctstate ESTABLISHED -m tcp"),
])
def test_api_drop_unclear_rule_is_manual_with_the_command(rule: str) -> None:
    ctx = coredns_blocked(rule)
    [plan] = ApiFirewallDrop(OPTS).plan(ctx)
    assert plan.actions == ()
    assert delete_command("nft", rule) in plan.manual
    restart = CoreDnsRestart(OPTS).plan(ctx)
    assert [p.manual != "" for p in restart] == [True]


def test_api_drop_needs_crashlooping_coredns() -> None:
    ctx = coredns_blocked(BLOCK)
    ctx.objects["pods"][0] = pod("kube-system", "coredns-a", "worker-1", DNS, "10.244.1.5")
    assert ApiFirewallDrop(OPTS).plan(ctx) == []
    assert ApiFirewallDrop(OPTS).plan(healthy()) == []


def test_api_drop_verify_reports_a_rule_still_there() -> None:
    ctx = coredns_blocked(BLOCK)
    hook = ApiFirewallDrop(OPTS)
    [plan] = hook.plan(ctx)
    assert hook.verify(ctx, plan) == f"still there: {BLOCK}"


def test_classify_conntrack_new_is_still_a_block() -> None:
    rule = BLOCK.replace("-m tcp", "-m conntrack --ctstate NEW -m tcp")
    api = ApiServer(frozenset({API_IP, CLUSTER_IP}), frozenset({6443, 443}))
    assert classify(rule, api, ("10.244.1.0/24",)) == "delete"
    assert classify(rule, api, ("10.244.2.0/24",)) == "none"  # not this node's pods


# -- coredns-restart after the firewall rule ------------------------------------------------
def test_coredns_restart_waits_for_the_rule_then_restarts() -> None:
    ctx = coredns_blocked(BLOCK)
    [manual] = CoreDnsRestart(OPTS).plan(ctx)
    assert manual.node == "worker-1"
    assert "api-firewall-drop" in manual.manual
    assert DELETE in manual.manual
    assert "kubectl -n kube-system rollout restart deployment coredns" in manual.manual
    firewall = ApiFirewallDrop(OPTS)
    for plan in firewall.plan(ctx):
        firewall.apply(ctx, plan)
    [restart] = CoreDnsRestart(OPTS).plan(ctx)
    assert restart.manual == ""
    assert restart.actions[0].command == ("kubectl -n kube-system rollout restart "
                                          "deployment coredns")


@pytest.mark.parametrize(("signal", "planned"), [("coredns_crashloop", True),
                                                ("service_endpoints_missing", False)])
def test_coredns_restart_replaces_a_pod_that_recovered_by_itself(signal: str,
                                                                 planned: bool) -> None:
    ctx = healthy()
    ctx.objects["pods"][0] = pod("kube-system", "coredns-a", "worker-1", DNS, "10.244.1.5",
                                 restarts=2)  # Ready again, but the checks saw it fail
    ctx.signals = frozenset({signal})
    plans = CoreDnsRestart(OPTS).plan(ctx)
    assert [p.actions[0].command for p in plans] == (
        ["kubectl -n kube-system rollout restart deployment coredns"] if planned else [])


def test_run_repairs_coredns_crashloop_and_is_idempotent() -> None:
    ctx = coredns_blocked(BLOCK_IN, BLOCK)
    hooks = list(default_hooks(OPTS).values())
    log = RemediationLog(None)
    out = run(hooks, ctx, Decision("applied", "t"), log=log)
    assert [(s.name, s.node, s.status) for s in out.steps] == [
        ("api-firewall-drop", "worker-1", "applied"), ("coredns-restart", None, "applied")]
    assert ctx.restarts == [("Deployment", "kube-system", "coredns")]
    assert "backups: /var/backups/netdoctor/r1/iptables-nft-worker-1-" in out.steps[0].detail
    assert any(DELETE in line for line in log.lines)
    # Undo: the filter table as saved; events on the node and the restarted Deployment.
    assert [u.kind for u in out.undos] == ["node", "api-patch"]
    assert out.undos[0].command.startswith("iptables-nft-restore -T filter < /host/var/back")
    assert [(e[0], e[2]) for e in ctx.events] == [("nodes", "worker-1"),
                                                  ("deployments", "coredns")]
    again = run(hooks, ctx, Decision("applied", "t"), log=log)
    assert again.steps == []


def test_dry_run_plans_the_deletion_and_leaves_the_restart_manual() -> None:
    ctx = coredns_blocked(BLOCK)
    out = run(list(default_hooks(OPTS).values()), ctx, Decision("dry-run", "t"))
    assert [(s.name, s.status) for s in out.steps] == [
        ("api-firewall-drop", "planned"), ("coredns-restart", "skipped")]
    assert (ctx.execs, ctx.restarts) == ([], [])


def test_budget_stops_the_restart_after_the_deletion() -> None:
    ctx = coredns_blocked(BLOCK)
    out = run(list(default_hooks(OPTS).values()), ctx, Decision("applied", "t"), changes=1)
    assert [(s.name, s.status) for s in out.steps] == [
        ("api-firewall-drop", "applied"), ("coredns-restart", "skipped")]
    assert "over budget: needs 1 change(s), 1 of --max-changes 1" in out.steps[1].detail
    assert (out.mode, out.changes, out.left) == ("over-budget", 1, ["coredns-restart -"])
    assert ctx.restarts == []


def test_failed_deletion_stops_the_restart() -> None:
    ctx = coredns_blocked(BLOCK)
    ctx.exec_exit = 1
    out = run(list(default_hooks(OPTS).values()), ctx, Decision("applied", "t"))
    assert [(s.name, s.status) for s in out.steps][:1] == [("api-firewall-drop", "failed")]
    assert "simulated failure" in out.steps[0].detail
    later = {s.name: s for s in out.steps[1:]}
    assert "coredns-restart" in later
    assert {s.status for s in later.values()} == {"skipped"}
    assert later["coredns-restart"].detail == "not run: api-firewall-drop on worker-1 failed"
    assert out.left == ["coredns-restart"]
    assert ctx.restarts == []


# -- service-selector -----------------------------------------------------------------------
WEBAPP = {"app": "webapp"}
HTTP = [{"containerPort": 8080, "name": "http"}]
PATCH_CMD = ("kubectl -n shop patch service web --type merge "
             "-p '{\"spec\":{\"selector\":{\"app\":\"webapp\"}}}'")


def shop(target: int | str = 8080, **extra: list[dict[str, Any]]) -> FakeContext:
    """Service shop/web selecting app=web; Deployment shop/web labels its pods app=webapp."""
    ctx = healthy()
    ctx.objects["services"].append({"metadata": {"namespace": "shop", "name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": target}]}})
    ctx.objects["deployments"].append(workload("shop", "web", WEBAPP, HTTP))
    ctx.objects["pods"].append(pod("shop", "web-1", "worker-2", WEBAPP, "10.244.2.7"))
    for kind, objs in extra.items():
        ctx.objects.setdefault(kind, []).extend(objs)
    ctx.signals = frozenset({"service_endpoints_missing"})
    return ctx


@pytest.mark.parametrize("target", [8080, "http"])
def test_service_selector_patched_to_the_near_miss(target: int | str) -> None:
    ctx = shop(target)
    hook = ServiceSelector(FIX_SELECTORS)
    [plan] = hook.plan(ctx)
    assert (plan.manual, plan.disruptive) == ("", True)
    assert plan.actions[0].command == PATCH_CMD
    restore = ("kubectl -n shop patch service web --type merge "
               "-p '{\"spec\":{\"selector\":{\"app\":\"web\"}}}'")
    assert restore in plan.actions[0].description
    detail = hook.apply(ctx, plan)
    assert ctx.patches == [("services", "shop", "web", {"spec": {"selector": WEBAPP}})]
    assert "{'app': 'web'} -> {'app': 'webapp'}" in detail
    assert restore in detail
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []


@pytest.mark.parametrize(("ctx_args", "why"), [
    ({"target": 9090}, "does not expose targetPort 9090"),
    ({"target": "metrics"}, "does not expose targetPort metrics"),
    ({"statefulsets": [workload("shop", "webs", {"app": "webs"}, HTTP)]}, "2 workloads"),
    ({"daemonsets": [workload("shop", "agent", WEBAPP, HTTP)]},
     "2 workloads with near-miss pod labels (Deployment web, DaemonSet agent)"),
])
def test_service_selector_ambiguous_stays_manual(ctx_args: dict[str, Any], why: str) -> None:
    ctx = shop(**ctx_args)
    [plan] = ServiceSelector(OPTS).plan(ctx)
    assert plan.actions == ()
    assert why in plan.manual
    assert "kubectl -n shop get pods --show-labels; kubectl -n shop patch service web -p " \
           "'{\"spec\": {\"selector\": {\"app\": \"<label>\"}}}'" in plan.manual


def test_service_selector_without_candidate_or_pods_stays_manual() -> None:
    ctx = shop()
    ctx.objects["deployments"][-1] = workload("shop", "db", {"app": "database"}, HTTP)
    [plan] = ServiceSelector(OPTS).plan(ctx)
    assert "0 workloads" in plan.manual
    ctx = shop()
    ctx.objects["pods"].pop()
    [plan] = ServiceSelector(OPTS).plan(ctx)
    assert "has no pods with {'app': 'webapp'}" in plan.manual


def test_service_selector_healthy_plans_nothing() -> None:
    ctx = shop()
    ctx.objects["services"][-1]["spec"]["selector"] = WEBAPP
    assert ServiceSelector(OPTS).plan(ctx) == []
    assert ServiceSelector(OPTS).plan(healthy()) == []


def test_service_selector_is_manual_without_fix_selectors() -> None:
    ctx = shop()
    [plan] = ServiceSelector(OPTS).plan(ctx)
    assert plan.actions == ()
    assert PATCH_CMD in plan.manual
    assert "--fix-selectors" in plan.manual
    assert ctx.patches == []


def test_service_selector_refuses_a_state_changed_since_the_plan() -> None:
    ctx = shop()
    hook = ServiceSelector(FIX_SELECTORS)
    [plan] = hook.plan(ctx)
    ctx.objects["services"][-1]["spec"]["selector"] = {"app": "web2"}
    with pytest.raises(RuntimeError, match="changed since it was planned"):
        hook.apply(ctx, plan)
    assert ctx.patches == []


def test_service_selector_verify_waits_for_endpoints() -> None:
    ctx = shop()
    hook = ServiceSelector(FIX_SELECTORS, deadline=10.5)
    [plan] = hook.plan(ctx)
    ctx.objects["pods"][-1]["status"]["conditions"][0]["status"] = "False"  # never ready
    hook.apply(ctx, plan)
    assert hook.verify(ctx, plan) == "Service shop/web has no endpoint addresses yet"


# -- system ---------------------------------------------------------------------------------
def test_kernel_sysctls() -> None:
    ctx = healthy()
    assert KernelSysctls(OPTS).plan(ctx) == []
    ctx.facts["worker-2"] = sample("sysctls-off-worker-2")
    hook = KernelSysctls(OPTS)
    [plan] = hook.plan(ctx)
    assert plan.node == "worker-2"
    assert [a.command for a in plan.actions[:2]] == [
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"]
    assert "/host/etc/sysctl.d/90-netdoctor-kubernetes.conf" in plan.actions[2].command
    hook.apply(ctx, plan)
    assert ctx.execs[0][1].startswith("set -e\necho 1 > /proc/sys/net/ipv4/ip_forward")
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []


def test_stale_kube_rules() -> None:
    ctx = healthy()
    hook = StaleKubeRules(OPTS)
    assert hook.plan(ctx) == []
    ctx.facts["worker-1"] = sample("mixed-backend-worker-1")
    nft_before = ctx.facts["worker-1"][:ctx.facts["worker-1"].index("### legacy-save")]
    [plan] = hook.plan(ctx)
    assert plan.backups == ("/var/backups/netdoctor/r1/iptables-legacy-worker-1.rules",)
    assert plan.actions[0].command == (
        f"mkdir -p {BACKUP} && {{ [ -e {BACKUP}/iptables-legacy-worker-1.rules ] || "
        f"iptables-legacy-save > {BACKUP}/iptables-legacy-worker-1.rules; }}")
    assert "iptables-legacy -w -t \"$t\" -X \"$c\"" in plan.actions[1].command
    assert "iptables-nft" not in plan.actions[1].command
    assert "3 stale KUBE-* rules" in plan.actions[1].description
    hook.apply(ctx, plan)
    assert "KUBE-SEP-STALE0DNS000000" in ctx.files[f"{BACKUP}/iptables-legacy-worker-1.rules"]
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []
    # kube-proxy's own backend is untouched
    assert ctx.facts["worker-1"][:ctx.facts["worker-1"].index("### legacy-save")] == nft_before


FOREIGN = json.dumps({"nftables": [{"chain": {"family": "ip", "table": "filter",
                                              "name": "OUTPUT", "type": "route",
                                              "hook": "output"}}]})


def test_foreign_nft_chain() -> None:
    ctx = healthy()
    ctx.objects["pods"][2] = pod("kube-system", "kube-proxy-2", "worker-2",
                                 {"k8s-app": "kube-proxy"}, "192.168.4.22", ok=False,
                                 restarts=3, host_network=True)
    hook = ForeignNftChain(OPTS)
    assert hook.plan(ctx) == []  # failing, but nothing foreign on the node
    ctx.facts["worker-2"] = sample("netfilter-broken-worker-2")
    ctx.reads[("worker-2", CHAINS_SCRIPT)] = (0, FOREIGN, "")
    [plan] = hook.plan(ctx)
    assert [a.command for a in plan.actions] == [
        f"mkdir -p {BACKUP} && {{ [ -e {BACKUP}/nft-ip-filter-worker-2.nft ] || "
        f"nft list table ip filter > {BACKUP}/nft-ip-filter-worker-2.nft; }}",
        "nft flush chain ip filter OUTPUT && nft delete chain ip filter OUTPUT"]
    assert hook.verify(ctx, plan) == "still there: [('filter', 'OUTPUT', 'route')]"
    ctx.after_exec = lambda node, script: ctx.reads.update(
        {(node, CHAINS_SCRIPT): (0, '{"nftables": []}', "")})
    hook.apply(ctx, plan)
    assert hook.verify(ctx, plan) is None


# -- cni ------------------------------------------------------------------------------------
def test_stray_cni_config() -> None:
    ctx = healthy()
    hook = StrayCniConfig(OPTS)
    assert hook.plan(ctx) == []
    ctx.facts["worker-2"] = sample("cni-shadowed-worker-2")
    [plan] = hook.plan(ctx)
    assert [a.command for a in plan.actions] == [
        f"mkdir -p {BACKUP}/cni-net.d-worker-2 && mv /host/etc/cni/net.d/00-bridge.conflist "
        f"{BACKUP}/cni-net.d-worker-2/"]
    assert plan.backups == ("/var/backups/netdoctor/r1/cni-net.d-worker-2/00-bridge.conflist",)
    hook.apply(ctx, plan)
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []


def test_bridge_address_evicts_owned_pods_only() -> None:
    ctx = healthy()
    hook = BridgeAddress(OPTS)
    assert hook.plan(ctx) == []
    ctx.facts["worker-2"] = sample("bridge-conflict-worker-2")
    ctx.objects["pods"] += [pod("shop", "web-1", "worker-2", WEBAPP, "10.244.2.7"),
                            pod("shop", "bare", "worker-2", {}, "10.244.2.8", owner=None)]
    [plan] = hook.plan(ctx)
    assert plan.disruptive
    assert [a.command for a in plan.actions] == [
        "ip link delete cni0",
        "kubectl create --raw /api/v1/namespaces/shop/pods/web-1/eviction -f - <<< "
        "'{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":"
        "{\"namespace\":\"shop\",\"name\":\"web-1\"}}'", "true"]
    assert [a.changes for a in plan.actions] == [1, 1, 0]
    assert "left alone (no controller): shop/bare" in plan.actions[2].description
    hook.apply(ctx, plan)
    assert ctx.evicted == ["shop/web-1"]
    assert hook.verify(ctx, plan) is None
    assert hook.plan(ctx) == []


def test_flannel_daemonset() -> None:
    ctx = healthy()
    hook = FlannelDaemonSet(OPTS)
    assert hook.plan(ctx) == []
    ctx.objects["configmaps"] = [{"metadata": {"namespace": "kube-flannel",  # left behind
                                               "name": "kube-flannel-cfg"},
                                  "data": {"cni-conf.json": "{}", "net-conf.json": "{}"}}]
    ctx.objects["daemonsets"].pop()
    [plan] = hook.plan(ctx)
    assert plan.actions[0].command == ("kubectl create -f /m/kube-flannel.yml  "
                                       "# only objects that do not exist")
    assert hook.apply(ctx, plan) == "applied /m/kube-flannel.yml"


# -- kube-proxy -----------------------------------------------------------------------------
def test_kube_proxy_restart() -> None:
    ctx = healthy()
    hook = KubeProxyRestart(OPTS)
    assert hook.plan(ctx) == []
    ctx.objects["pods"][2] = pod("kube-system", "kube-proxy-2", "worker-2",
                                 {"k8s-app": "kube-proxy"}, "192.168.4.22", ok=False,
                                 restarts=3, host_network=True)
    ctx.facts["worker-2"] = sample("netfilter-broken-worker-2")
    [blocked] = hook.plan(ctx)
    assert "iptables still cannot manage the tables on worker-2" in blocked.manual
    ctx.facts["worker-2"] = sample("healthy-worker-2")
    [plan] = hook.plan(ctx)
    assert plan.actions[0].command == "kubectl -n kube-system rollout restart daemonset " \
        "kube-proxy"
    ctx.after_restart = lambda kind, ns, name: ctx.objects["pods"].__setitem__(
        2, pod("kube-system", "kube-proxy-3", "worker-2", {"k8s-app": "kube-proxy"},
               "192.168.4.22", host_network=True))
    hook.apply(ctx, plan)
    assert ctx.restarts == [("DaemonSet", "kube-system", "kube-proxy")]
    assert hook.verify(ctx, plan) is None
    ctx.objects["daemonsets"] = []
    [missing] = hook.plan(ctx)
    assert "kubeadm init phase addon kube-proxy" in missing.manual


# -- the runner's guards --------------------------------------------------------------------
@dataclass
class KubeletRestart:
    """A node hook whose command touches the kubelet (what the control-plane guard is for)."""

    name: str = "kubelet-restart"
    stage: str = "system"
    causes: frozenset[str] = frozenset({"x"})
    level: Level = "node"
    disruptive: bool = False
    deadline: float = 10.0
    nodes: tuple[str, ...] = ("control-plane", "worker-1")
    applied: list[str] = field(default_factory=list)

    def plan(self, ctx: RepairContext) -> list[Plan]:
        return [Plan(self.name, n, (Action("restart kubelet", "systemctl restart kubelet"),))
                for n in self.nodes]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        self.applied.append(str(plan.node))
        return "restarted"

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        return None


@pytest.mark.parametrize(("allow", "applied"), [(False, ["worker-1"]),
                                                (True, ["control-plane", "worker-1"])])
def test_control_plane_guard(allow: bool, applied: list[str]) -> None:
    ctx = healthy()
    ctx.causes, ctx.allow_control_plane = (("x", None),), allow
    hook = KubeletRestart()
    out = run([hook], ctx, Decision("applied", "t"))
    assert hook.applied == applied
    if not allow:
        assert out.steps[0].status == "skipped"
        assert "control-plane node: not changed without --allow-control-plane" \
            in out.steps[0].detail


def test_every_registered_hook_is_healthy_quiet() -> None:
    ctx = healthy()
    ctx.causes = tuple((c, None) for h in default_hooks(OPTS).values() for c in h.causes)
    out = run(list(default_hooks(OPTS).values()), ctx, Decision("applied", "t"))
    assert out.steps == []
    assert "api-firewall-drop" in REGISTRY
    assert (ctx.execs, ctx.patches, ctx.restarts) == ([], [], [])
    assert all(ready(p) for p in ctx.objects["pods"])
