"""The shipped RBAC manifests hold exactly the rules the suite checks for, per mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netdoctor.cluster.permissions import MANIFEST, MODES, Missing, Mode, message

REPO = Path(__file__).resolve().parents[2]


def _docs(mode: str) -> dict[str, dict]:  # type: ignore[type-arg]
    docs = [d for d in yaml.safe_load_all((REPO / MANIFEST.format(mode=mode)).read_text()) if d]
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_manifest_rules_are_the_checked_ones(mode: Mode) -> None:
    docs = _docs(mode)
    assert docs["ClusterRole"]["rules"] == [need.rule() for need in MODES[mode]]
    assert docs["ServiceAccount"]["metadata"] == {"name": "netdoctor", "namespace": "netdoctor"}
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "netdoctor",
                                    "namespace": "netdoctor"}]


def test_modes_only_add() -> None:
    assert set(MODES["diagnose"]) < set(MODES["validate"]) < set(MODES["remediate"])
    for needs in MODES.values():
        for need in needs:
            assert "*" not in need.verbs, need
            assert "*" not in need.resources, need
            assert "watch" not in need.verbs  # the suite polls lists; it never watches


def test_message_names_verb_resource_and_manifest() -> None:
    text = message("diagnose", [Missing("create", "", "pods/exec", "nd-1", "exec"),
                                Missing("list", "apps", "daemonsets", None, "CNI")])
    assert "create pods/exec in namespace nd-1 (exec)" in text
    assert "list daemonsets.apps (CNI)" in text
    assert "kubectl apply -f deploy/rbac/diagnose.yaml" in text
    assert "\n" not in text
