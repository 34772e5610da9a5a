"""Each mode runs with exactly its shipped RBAC manifest, and every rule of it is used.

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
from netdoctor.lab.access import apply, delete, load, service_account_kubeconfig
from netdoctor.lab.api.rbac import read_audit, rule_matches
from netdoctor.lab.daemon import AUDIT_FILE
from selftests.e2e.labrun import REPO, Lab, Run, diagnose_argv, lab_up, probe_objects, run_diagnose
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


@pytest.fixture
def manifests(healthy_lab: Lab) -> Iterator[list[list[dict[str, Any]]]]:
    """Applied manifests are removed again (the shared lab stays as it was)."""
    applied: list[list[dict[str, Any]]] = []
    yield applied
    for docs in applied:
        delete(healthy_lab.state_dir, [d for d in docs if d["kind"] != "Namespace"])


def _assert_least(lab: Lab, mode: Mode, run: Run) -> None:
    decisions = read_audit(lab.state_dir / AUDIT_FILE, SA_USER)
    refused = [a for a, ok in decisions if not ok]
    assert not refused, refused
    used = [a for a, ok in decisions if ok and a.path is None]
    unused = [r for r in _rules(_manifest(mode)) if not any(rule_matches(r, a) for a in used)]
    assert not unused, f"rules no request of a {mode} run needed: {json.dumps(unused)}"


@pytest.mark.parametrize("mode", ["diagnose", "validate"])
def test_mode_runs_with_only_its_manifest(healthy_lab: Lab, manifests: list[Any],
                                          tmp_path: Path, mode: Mode) -> None:
    docs = _manifest(mode)
    manifests.append(docs)
    kc = _as_service_account(healthy_lab, docs, tmp_path)
    argv = diagnose_argv(kc, tmp_path / "r", f"--external-url={LAB_URL}")
    if mode == "validate":
        argv[argv.index("diagnose")] = "validate"
    run = run_diagnose(kc, tmp_path / "r", argv=argv)
    assert run.returncode == 0, run.output[-2000:]
    assert run.summary["score"] == 0, run.output[-2000:]
    _assert_least(healthy_lab, mode, run)
    assert probe_objects(healthy_lab.kubeconfig) == []


def test_remediate_runs_with_only_its_manifest(tmp_path: Path) -> None:
    lab = lab_up(tmp_path / "lab", "service-no-endpoints")
    try:
        kc = _as_service_account(lab, _manifest("remediate"), tmp_path)
        argv = [*diagnose_argv(kc, tmp_path / "r", f"--external-url={LAB_URL}", "--remediate",
                               "--non-interactive", "--force", f"--dns-fallback={FALLBACK}",
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
def test_missing_rule_named_with_manifest(healthy_lab: Lab, manifests: list[Any],
                                          tmp_path: Path, index: int) -> None:
    docs = _without(_manifest("diagnose"), index)
    manifests.append(docs)
    kc = _as_service_account(healthy_lab, docs, tmp_path)
    run = run_diagnose(kc, tmp_path / "r")
    need = MODES["diagnose"][index]
    assert run.returncode == 4, run.output[-2000:]
    assert "Traceback" not in run.output
    for verb in need.verbs:
        what = f"{need.resources[0]}.{need.group}" if need.group else need.resources[0]
        assert f"{verb} {what}" in run.output, run.output[-2000:]
    assert "kubectl apply -f deploy/rbac/diagnose.yaml" in run.output
    assert probe_objects(healthy_lab.kubeconfig) == []
