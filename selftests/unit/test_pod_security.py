"""The lab's Pod Security Admission: each level's checks, and the suite's pods against them."""

from __future__ import annotations

from typing import Any

import pytest

from netdoctor.cluster.probes import probe_pod_spec
from netdoctor.lab.api.podsecurity import violations

PROBE = probe_pod_spec(node="n", namespace="ns", image="i:1", run_id="r")["spec"]
NODE_PROBE = probe_pod_spec(node="n", namespace="ns", image="i:1", run_id="r",
                            node_level=True)["spec"]
RESTRICTED_OK: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "i:1", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}


def test_node_probes_need_privileged() -> None:
    assert violations("privileged", NODE_PROBE) == []
    assert violations("baseline", NODE_PROBE) == [
        "host namespaces (hostNetwork=true)",
        'privileged (container "probe" must not set securityContext.privileged=true)',
        'hostPath volumes (volume "host")']


def test_probe_pods_are_baseline() -> None:
    assert violations("baseline", PROBE) == []
    assert violations("restricted", PROBE)  # netshoot runs as root


@pytest.mark.parametrize(("change", "words"), [
    ({"hostPID": True}, "host namespaces (hostPID=true)"),
    ({"containers": [{"name": "c", "image": "i:1", "securityContext": {
        "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}}]},
     'non-default capabilities (container "c" must not include "NET_ADMIN"'),
    ({"containers": [{"name": "c", "image": "i:1", "ports": [{"hostPort": 80}]}]},
     'hostPort (container "c" uses hostPort 80)'),
], ids=["hostPID", "capabilities", "hostPort"])
def test_baseline_checks(change: dict[str, Any], words: str) -> None:
    spec = {"containers": [{"name": "c", "image": "i:1"}], **change}
    assert any(v.startswith(words) for v in violations("baseline", spec)), \
        violations("baseline", spec)


def test_restricted_checks() -> None:
    assert violations("restricted", RESTRICTED_OK) == []
    root = {**RESTRICTED_OK, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}
    assert violations("restricted", root) == [
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)']
