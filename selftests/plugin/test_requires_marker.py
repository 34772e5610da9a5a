"""``@pytest.mark.requires(...)``: listed by ``pytest --markers`` with its signature, judged
once against the cluster profile at setup, skipping with the reason; a bad marker fails."""

from __future__ import annotations

import pytest

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

CONFTEST = """
import pytest
from fixtures.cluster import _netdoctor_requires  # the engine's judge, without a cluster
from netdoctor.cluster.profile import build_profile

CALLS = []

@pytest.fixture(scope="session")
def profile():
    CALLS.append(1)
    node = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    cilium = {"metadata": {"namespace": "kube-system", "name": "cilium",
                           "labels": {"k8s-app": "cilium"}},
              "spec": {"template": {"spec": {"containers": [
                  {"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.16.1"}]}}}}
    kpr = {"metadata": {"namespace": "kube-system", "name": "cilium-config"},
           "data": {"kube-proxy-replacement": "true"}}
    return build_profile("https://api", [node], [cilium], [], [], [kpr])
"""


def test_requires_listed_with_its_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.requires(*components, cni=None, nodes=0, node_probes=False): what the "
        "check needs from the cluster, judged once against the cluster profile at setup*"])


def test_requires_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires("kube-proxy")
        def test_proxy(): pass

        @pytest.mark.requires(nodes=2)
        def test_pairs(): pass

        @pytest.mark.requires(cni="cilium")
        def test_cilium(): pass

        @pytest.mark.requires("cni-agent", cni=("flannel", "canal"))
        def test_flannel(): pass

        def test_plain(): pass
    """)
    result = pytester.runpytest(*PLUGIN, "-rs", "--strict-markers")
    result.assert_outcomes(passed=2, skipped=3)
    result.stdout.fnmatch_lines_random([
        "SKIPPED*needs kube-proxy: kube-proxy is absent by design (Cilium replaces "
        "kube-proxy (kube-proxy-replacement=true*",
        "SKIPPED*needs at least 2 Ready nodes, found 1*",
        "SKIPPED*needs CNI flannel or canal; the cluster's CNI is cilium*"])


def test_bad_requires_marker_fails_the_check(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires("etcd")
        def test_bad(): pass
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad requires marker: requires() got unknown component(s) "
                                 "etcd*"])
