"""The incident (``--scenario problem-statement``) on every profile other than the default:
what the API and the nodes show afterwards, in each distribution's own shape.

One lab per profile. The default profile's incident is covered by test_lab_faults.py.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from netdoctor.lab import profiles
from netdoctor.lab.daemon import lab_info
from selftests.lab.labfixture import (
    LabCluster,
    lab_unavailable,
    new_state_dir,
    started_lab,
    wait_until,
)

pytestmark = pytest.mark.lab
Obj = dict[str, Any]
PROFILES = ("calico", "cilium-kpr", "k3s", "multus", "openshift-dns", "rke2-canal")


class Incident:
    """A lab of one profile in the incident's state."""

    def __init__(self, lab: LabCluster, profile: str) -> None:
        self.lab, self.profile = lab, profiles.get(profile)
        self.info = lab_info(lab.state_dir, 2, profile)

    def pods(self, sel: profiles.Pods) -> list[Obj]:
        return self.lab.pods(sel.namespace, f"{sel.key}={sel.value}")


@pytest.fixture(scope="module", params=PROFILES)
def incident(request: pytest.FixtureRequest) -> Incident:
    """A lab of each profile brought up in the incident's state."""
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"needs a machine that can host a lab: {reason}")
    profile: str = request.param
    lab = started_lab(new_state_dir(f"inc-{profile}"), request, "--scenario",
                      "problem-statement", profile=profile)
    return Incident(lab, profile)


def _ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions") or [])


def test_stray_config_wins_on_worker_2(incident: Incident) -> None:
    conf_dir = Path(incident.info.nodes["worker-2"].root) / incident.info.cni_conf_dir
    files = sorted(p.name for p in conf_dir.iterdir() if p.suffix in (".conf", ".conflist"))
    assert files[0] == "00-bridge.conflist", files
    # Its pods take another node's range: the DNS pod scheduled there shows it.
    dns = [p for p in incident.pods(incident.profile.dns) if p["spec"]["nodeName"] == "worker-2"]
    assert dns, "no DNS pod on worker-2"
    ip = ipaddress.ip_address(dns[0]["status"]["podIP"])
    assert ip in ipaddress.ip_network(incident.info.nodes["control-plane"].pod_range)
    assert not _ready(dns[0])
    # CoreDNS there has restarted (its own exit or its liveness probe) or crashes now.
    crashing = [p for p in incident.pods(incident.profile.dns)
                if p["status"]["containerStatuses"][0]["restartCount"] >= 1]
    assert crashing


def test_dns_service_lost_the_broken_endpoint(incident: Incident) -> None:
    dns = incident.profile.dns
    services = [s for s in incident.lab.get("services", "-n", dns.namespace)["items"]
                if s["spec"].get("selector", {}).get(dns.key) == dns.value]
    assert len(services) == 1
    ep = incident.lab.get("endpoints", "-n", dns.namespace, services[0]["metadata"]["name"])
    # By pod name: the stray config gives worker-2's pod the same address as a pod elsewhere.
    ready = {a["targetRef"]["name"] for s in ep.get("subsets") or []
             for a in s.get("addresses") or []}
    worker2 = {p["metadata"]["name"] for p in incident.pods(dns)
               if p["spec"]["nodeName"] == "worker-2"}
    assert not ready & worker2
    if incident.profile.name != "openshift-dns":  # a one-replica Deployment: nothing left
        assert ready == set()


def test_cni_agent_is_gone(incident: Incident) -> None:
    prof = incident.profile
    if prof.cni_daemonset is not None:
        ns, name = prof.cni_daemonset
        done = incident.lab.kubectl("get", "daemonset", "-n", ns, name, check=False)
        assert done.returncode != 0
        assert "NotFound" in done.stderr
        assert not incident.pods(prof.per_node[0])
    else:  # k3s: the agent's Flannel stopped; its VXLAN device went with it
        for node in ("control-plane", "worker-1"):
            done = incident.lab.kubectl("get", "node", node, "-o",
                                        "jsonpath={.metadata.annotations}")
            assert "flannel.alpha.coreos.com/backend-data" in done.stdout
        assert _node_exec(incident, "worker-1", "ip", "link", "show", "flannel.1") != 0


def test_kube_proxy_fails_on_the_workers_where_it_exists(incident: Incident) -> None:
    kp = incident.profile.kube_proxy
    if kp is not None:
        def restarted() -> dict[str, Obj] | None:
            # Each fails at its next sync, which the fault brings about at once.
            pods = {p["spec"]["nodeName"]: p for p in incident.pods(kp)}
            done = all(pods[n]["status"]["containerStatuses"][0]["restartCount"] >= 1
                       for n in ("worker-1", "worker-2"))
            return pods if done else None
        pods = wait_until(restarted, 45, "kube-proxy to fail on both workers", interval=1.0)
        assert _ready(pods["control-plane"])
    elif incident.profile.node_tasks:  # embedded: the agent's log says it, no pod does
        # It fails at its next sync, which the fault brings about at once.
        log = Path(incident.info.nodes["worker-1"].root) / "var/log/k3s.log"
        wait_until(lambda: "kube-proxy exited with code 1" in log.read_text(), 45,
                   "the embedded kube-proxy to fail on worker-1")
        assert not [p for p in incident.lab.get("pods", "-A")["items"]
                    if "kube-proxy" in p["metadata"]["name"]]
    else:
        faults = {f["name"] for f in incident.lab.status()["faults"]}
        assert "kube-proxy-crashloop" not in faults


def _node_exec(incident: Incident, node: str, *cmd: str) -> int:
    import subprocess

    return subprocess.run(["ip", "netns", "exec", incident.info.nodes[node].netns, *cmd],
                          capture_output=True, check=False, timeout=10).returncode
