"""Run ``pytest --remediate`` and ``netdoctor rollback`` against labs, and read back what a
repair may change (node files, chains, sysctls, API objects) to compare before and after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from selftests.e2e.labrun import (
    LAB_EXTERNAL_DNS,
    REPO,
    Lab,
    Run,
    _env,
    run_diagnose,
    suite_argv,
)
from selftests.e2e.validaterun import LAB_URL

FALLBACK = "198.51.100.53"  # the lab's second resolver (a documentation address)
REMEDIATE_TIMEOUT = 300.0
NODES = {"control-plane": "cp", "worker-1": "w1", "worker-2": "w2"}


def remediate(lab: Lab, report_dir: Path, *extra: str) -> Run:
    """``pytest --remediate`` (every check) as an operator runs it in a pipeline (no TTY)."""
    argv = suite_argv(lab.kubeconfig, report_dir, f"--external-url={LAB_URL}", "--remediate",
                      "--non-interactive", f"--dns-fallback={FALLBACK}", *extra)
    return run_diagnose(lab.kubeconfig, report_dir, argv=argv, timeout=REMEDIATE_TIMEOUT)


def rollback(lab: Lab, run_id: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """``netdoctor rollback RUN_ID`` with the lab's kubeconfig."""
    return subprocess.run(
        [sys.executable, "-m", "netdoctor.cli", "rollback", run_id,
         f"--kubeconfig={lab.kubeconfig}", f"--report-dir={report_dir}",
         f"--diagnose-option=--external-dns={LAB_EXTERNAL_DNS}"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False)


def kubectl_json(lab: Lab, *args: str) -> Any:
    """``kubectl get ... -o json`` against the lab."""
    out = subprocess.run(["kubectl", f"--kubeconfig={lab.kubeconfig}", "get", *args, "-o",
                          "json"], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def in_node(lab: Lab, node: str, *cmd: str) -> str:
    """A command's output inside the lab node's network namespace."""
    prefix = json.loads((lab.state_dir / "state.json").read_text())["prefix"]
    done = subprocess.run(["ip", "netns", "exec", f"{prefix}-{NODES[node]}", *cmd],
                          capture_output=True, text=True, timeout=30, check=False)
    return done.stdout if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


def node_state(lab: Lab) -> dict[str, Any]:
    """What node hooks change: CNI configs (name and content), the filter table's OUTPUT
    chain, the kernel switches."""
    out: dict[str, Any] = {}
    for node in NODES:
        net_d = lab.state_dir / "nodes" / node / "etc" / "cni" / "net.d"
        out[node] = {
            "net.d": {p.name: p.read_text() for p in sorted(net_d.glob("*"))},
            "output-chain": in_node(lab, node, "nft", "-s", "list", "chain", "ip", "filter",
                                    "OUTPUT"),
            "sysctls": in_node(lab, node, "sysctl", "-n", "net.ipv4.ip_forward",
                               "net.bridge.bridge-nf-call-iptables")}
    return out


def api_state(lab: Lab) -> dict[str, Any]:
    """What API hooks change: the Corefile, pod templates of CoreDNS and kube-proxy, which
    DaemonSets exist, Service selectors."""
    cms = kubectl_json(lab, "configmap", "-n", "kube-system", "coredns")
    dep = kubectl_json(lab, "deployment", "-n", "kube-system", "coredns")
    proxy = kubectl_json(lab, "daemonset", "-n", "kube-system", "kube-proxy")
    daemonsets = kubectl_json(lab, "daemonsets", "-A")["items"]
    services = kubectl_json(lab, "services", "-A")["items"]
    return {"Corefile": cms["data"]["Corefile"],
            "coredns-template": dep["spec"]["template"]["metadata"],
            "kube-proxy-template": proxy["spec"]["template"]["metadata"],
            "daemonsets": sorted(f"{d['metadata']['namespace']}/{d['metadata']['name']}"
                                 for d in daemonsets),
            "selectors": {f"{s['metadata']['namespace']}/{s['metadata']['name']}":
                          s["spec"].get("selector") for s in services}}
