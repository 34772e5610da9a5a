"""Images: where probes may run, how they pull, and how the lab's registry names a reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.cluster.echo import echo_deployment_spec
from netdoctor.cluster.images import Placement, image_pull_problem
from netdoctor.cluster.probes import probe_pod_spec
from netdoctor.lab.registry import Registry, normalize, parse_error
from netdoctor.plugin.options import resolve_settings

LINUX_AMD64 = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}


def test_placement_in_every_pod_spec() -> None:
    where = Placement(pull_secrets=("mirror",), arches=("arm64",))
    probe = probe_pod_spec(node="n", namespace="ns", image="i:1", run_id="r", placement=where)
    echo = echo_deployment_spec(node="n", namespace="ns", run_id="r", image="e:2",
                                placement=where)["spec"]["template"]["spec"]
    for spec in (probe["spec"], echo):
        assert spec["imagePullSecrets"] == [{"name": "mirror"}]
        terms = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}]
    assert echo["containers"][0]["image"] == "e:2"
    assert "imagePullSecrets" not in probe_pod_spec(node="n", namespace="ns", image="i:1",
                                                    run_id="r")["spec"]


@pytest.mark.parametrize(("labels", "refused"), [
    (LINUX_AMD64, False), ({**LINUX_AMD64, "kubernetes.io/arch": "arm64"}, False),
    ({**LINUX_AMD64, "kubernetes.io/arch": "s390x"}, True),
    ({**LINUX_AMD64, "kubernetes.io/os": "windows"}, True),
], ids=["amd64", "arm64", "s390x", "windows"])
def test_refused_nodes(labels: dict[str, str], refused: bool) -> None:
    assert (Placement().refuses(labels) is not None) is refused


def test_image_pull_problem_reads_waiting_reason() -> None:
    def pod(reason: str) -> dict[str, object]:
        return {"status": {"containerStatuses": [{"state": {"waiting": {
            "reason": reason, "message": "m"}}}]}}
    assert image_pull_problem(pod("ImagePullBackOff")) == "ImagePullBackOff: m"
    assert image_pull_problem(pod("ContainerCreating")) is None


def test_registry() -> None:
    reg = Registry()
    assert reg.pull_error("docker.io/library/busybox:1.36.1") is None
    assert reg.pull_error("registry.k8s.io/coredns/coredns:v1.11.1") is None
    error = reg.pull_error("busybox:9")
    assert error is not None
    assert 'failed to resolve reference "docker.io/library/busybox:9"' in error
    reg.add(["busybox:9"])
    assert reg.pull_error("busybox:9") is None
    assert normalize("localhost:5000/x/y:1") == "localhost:5000/x/y:1"
    assert parse_error("ok/image:1") is None
    assert parse_error("bad image") is not None


def test_echo_image_and_pull_secret_options() -> None:
    base = Path("/w")
    s = resolve_settings({"echo_image": "mirror.example/agnhost:2.53",
                          "image_arch": ["arm64"]}, {}, {}, cwd=base)
    assert (s.echo_image, s.image_arch) == ("mirror.example/agnhost:2.53", ("arm64",))
    with pytest.raises(pytest.UsageError, match="latest"):
        resolve_settings({"echo_image": "agnhost:latest"}, {}, {}, cwd=base)
    with pytest.raises(pytest.UsageError, match="--probe-namespace"):
        resolve_settings({"image_pull_secret": ["regcred"]}, {}, {}, cwd=base)
    ok = resolve_settings({"image_pull_secret": ["regcred"], "probe_namespace": "nd"}, {}, {},
                          cwd=base)
    assert ok.image_pull_secret == ("regcred",)
