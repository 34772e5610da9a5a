"""Each mode runs with exactly its shipped RBAC manifest, and every rule of it is used, in
labs that enforce RBAC and Pod Security Admission (baseline by default).

The lab enforces RBAC and records each decision on a ServiceAccount (``audit.jsonl``): a run
with only ``deploy/rbac/<mode>.yaml`` must pass with no request refused, and each rule of the
manifest must have allowed at least one request (no rule to spare). A manifest with one rule
removed stops the run before it creates anything, with one message naming the verb, the
resource and the manifest to apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netdoctor.cluster.permissions import MANIFEST, MODES, Mode
from netdoctor.lab.access import AccessError, apply, delete, load, service_account_kubeconfig
from netdoctor.lab.api.rbac import read_audit, rule_matches
from netdoctor.lab.daemon import AUDIT_FILE
from selftests.e2e.labrun import (
    REPO,
    Lab,
    Run,
    diagnose_argv,
    lab_up,
    probe_objects,
    run_diagnose,
    suite_argv,
)
from selftests.e2e.validaterun import LAB_URL

SA_USER = "system:serviceaccount:netdoctor:netdoctor"
FALLBACK = "198.51.100.53"  # the lab's second resolver (a documentation address)


def _manifest(mode: Mode) -> list[dict[str, Any]]:
    return load(REPO / MANIFEST.format(mode=mode))


def _rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return next(d for d in docs if d["kind"] == "ClusterRole")["rules"]


def _as_service_account(lab: Lab, docs: list[dict[str, Any]], tmp: Path) -> Path:
    apply(lab.state_dir, docs)
    (lab.state_dir / AUDIT_FILE).unlink(missing_ok=True)
    return service_account_kubeconfig(lab.state_dir, "netdoctor", "netdoctor", tmp / "sa.kc")


BASELINE = "--pod-security=baseline"


@pytest.fixture(scope="module")
def baseline_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A healthy lab whose namespaces default to Pod Security level baseline."""
    lab = lab_up(tmp_path_factory.mktemp("baseline") / "lab", "healthy", 2, BASELINE)
    yield lab
    lab.down()


@pytest.fixture
def manifests(baseline_lab: Lab) -> Iterator[list[list[dict[str, Any]]]]:
    """Applied manifests are removed again (the module's lab stays as it was)."""
    applied: list[list[dict[str, Any]]] = []
    yield applied
    for docs in applied:
        delete(baseline_lab.state_dir, [d for d in docs if d["kind"] != "Namespace"])


def _assert_least(lab: Lab, mode: Mode, run: Run) -> None:
    decisions = read_audit(lab.state_dir / AUDIT_FILE, SA_USER)
    refused = [a for a, ok in decisions if not ok]
    assert not refused, refused
    used = [a for a, ok in decisions if ok and a.path is None]
    unused = [r for r in _rules(_manifest(mode)) if not any(rule_matches(r, a) for a in used)]
    assert not unused, f"rules no request of a {mode} run needed: {json.dumps(unused)}"


@pytest.mark.parametrize("mode", ["diagnose", "validate"])
def test_mode_runs_with_only_its_manifest(baseline_lab: Lab, manifests: list[Any],
                                          tmp_path: Path, mode: Mode) -> None:
    docs = _manifest(mode)
    manifests.append(docs)
    kc = _as_service_account(baseline_lab, docs, tmp_path)
    argv = diagnose_argv(kc, tmp_path / "r", f"--external-url={LAB_URL}")
    if mode == "validate":
        argv[argv.index("diagnose")] = "validate"
    run = run_diagnose(kc, tmp_path / "r", argv=argv)
    assert run.returncode == 0, run.output[-2000:]
    assert run.summary["score"] == 0, run.output[-2000:]
    _assert_least(baseline_lab, mode, run)
    assert probe_objects(baseline_lab.kubeconfig) == []


def test_remediate_runs_with_only_its_manifest(tmp_path: Path) -> None:
    lab = lab_up(tmp_path / "lab", "service-no-endpoints", 2, BASELINE)
    try:
        kc = _as_service_account(lab, _manifest("remediate"), tmp_path)
        argv = [*diagnose_argv(kc, tmp_path / "r", f"--external-url={LAB_URL}", "--remediate",
                               "--non-interactive", "--yes", "--fix-selectors", "--force",
                               f"--dns-fallback={FALLBACK}",
                               "--setup-timeout=20")]
        at = argv.index("diagnose")
        run = run_diagnose(kc, tmp_path / "r", argv=argv[:at - 1] + argv[at + 1:], timeout=300)
        block = run.summary.get("remediation") or {}
        assert block.get("mode") == "applied", run.output[-2000:]
        assert block.get("score_after") == 0, json.dumps(block, indent=1)
        refused = [a for a, ok in read_audit(lab.state_dir / AUDIT_FILE, SA_USER) if not ok]
        assert not refused, refused
        assert any(a.verb == "patch" and a.resource == "services"
                   for a, ok in read_audit(lab.state_dir / AUDIT_FILE, SA_USER) if ok)
    finally:
        lab.down()


def _without(docs: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    out = [dict(d) for d in docs]
    role = next(d for d in out if d["kind"] == "ClusterRole")
    role["rules"] = [r for i, r in enumerate(role["rules"]) if i != index]
    return out


# One rule per path the message comes from: the client's first request (list nodes), and the
# access review of a namespaced subresource and of a named API group.
MISSING = [i for i, n in enumerate(MODES["diagnose"])
           if n.resources in (("nodes",), ("pods/exec",), ("daemonsets", "deployments"))]


@pytest.mark.parametrize("index", MISSING,
                         ids=[f"{'+'.join(MODES['diagnose'][i].resources)}" for i in MISSING])
def test_missing_rule_named_with_manifest(baseline_lab: Lab, manifests: list[Any],
                                          tmp_path: Path, index: int) -> None:
    docs = _without(_manifest("diagnose"), index)
    manifests.append(docs)
    kc = _as_service_account(baseline_lab, docs, tmp_path)
    run = run_diagnose(kc, tmp_path / "r")
    need = MODES["diagnose"][index]
    assert run.returncode == 4, run.output[-2000:]
    assert "Traceback" not in run.output
    for verb in need.verbs:
        what = f"{need.resources[0]}.{need.group}" if need.group else need.resources[0]
        assert f"{verb} {what}" in run.output, run.output[-2000:]
    assert "kubectl apply -f deploy/rbac/diagnose.yaml" in run.output
    assert probe_objects(baseline_lab.kubeconfig) == []


def _namespace(lab: Lab, name: str, level: str | None) -> None:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    apply(lab.state_dir, [{"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": name, "labels": labels}}])


def test_pod_security_refuses_like_the_admission_plugin(baseline_lab: Lab) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "hostnet", "namespace": "default"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    with pytest.raises(AccessError) as refused:
        apply(baseline_lab.state_dir, [pod])
    assert str(refused.value) == (
        'Pod hostnet: pods "hostnet" is forbidden: violates PodSecurity "baseline:latest": '
        "host namespaces (hostNetwork=true)")


def test_policy_rejection_names_the_level(baseline_lab: Lab, tmp_path: Path) -> None:
    _namespace(baseline_lab, "nd-given", None)  # the lab's default level: baseline
    run = run_diagnose(baseline_lab.kubeconfig, tmp_path / "r", "--probe-namespace=nd-given")
    assert run.returncode == 4, run.output[-2000:]
    assert "policy rejection: admit node probes in namespace nd-given" in run.output
    assert 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' in \
        run.output
    assert "--no-node-probes" in run.output
    assert "forbidden:" not in run.output.replace("is forbidden:", "")  # not blamed on RBAC
    assert probe_objects(baseline_lab.kubeconfig) == []


def test_no_node_probes_runs_unprivileged(baseline_lab: Lab, tmp_path: Path) -> None:
    _namespace(baseline_lab, "nd-baseline", "baseline")
    argv = suite_argv(baseline_lab.kubeconfig, tmp_path / "r", f"--external-url={LAB_URL}",
                      "--probe-namespace=nd-baseline", "--no-node-probes")
    run = run_diagnose(baseline_lab.kubeconfig, tmp_path / "r", argv=argv)
    assert run.returncode == 0, run.output[-2000:]
    tests = run.summary["tests"]
    # Every node-fact check but the one read from the API (pod IPs against podCIDRs).
    facts = [t for t in tests if "test_node_facts" in t["nodeid"]
             and "test_pod_ips_in_podcidr" not in t["nodeid"]]
    assert facts, [t["nodeid"] for t in tests]
    assert {t["outcome"] for t in facts} == {"skipped"}, facts
    analysis = (tmp_path / "r" / "analysis.md").read_text()
    assert "not measured: --no-node-probes" in analysis, analysis[-2000:]
    assert run.summary["root_causes_not_evaluated"]["node_facts"].startswith("not measured")
    assert "causes read from node facts not evaluated" in run.output
    assert probe_objects(baseline_lab.kubeconfig) == []
