"""Where the suite's pods may run and how they get their images.

Every pod of a run requires Linux nodes of the image's architectures and carries the image
pull secrets; a container that cannot get its image is recognised from its waiting reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                      "ErrImageNeverPull")
# Seconds a probe may keep failing to pull before its node counts as an image problem: a
# registry hiccup clears within one retry; a missing image or credential never does.
IMAGE_GRACE = 10.0


@dataclass(frozen=True)
class Placement:
    """Where the suite's pods may run and how they pull their images.

    Example:
        >>> Placement(arches=("amd64",)).refuses({"kubernetes.io/arch": "s390x",
        ...                                       "kubernetes.io/os": "linux"})
        'node is linux/s390x; the probe images are for linux/amd64 (--image-arch)'
    """

    pull_secrets: tuple[str, ...] = ()
    arches: tuple[str, ...] = ("amd64", "arm64")

    def refuses(self, node_labels: Mapping[str, str]) -> str | None:
        """Why a node with these labels gets no probe, or ``None``."""
        os_, arch = node_labels.get(OS_LABEL, ""), node_labels.get(ARCH_LABEL, "")
        if os_ == "linux" and arch in self.arches:
            return None
        return (f"node is {os_ or '?'}/{arch or '?'}; the probe images are for "
                f"linux/{', '.join(self.arches)} (--image-arch)")

    def apply(self, pod_spec: dict[str, Any]) -> dict[str, Any]:
        """Add the node selection and pull secrets to a pod spec (returned for chaining)."""
        pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": OS_LABEL, "operator": "In", "values": ["linux"]},
                {"key": ARCH_LABEL, "operator": "In", "values": list(self.arches)}]}]}}}
        if self.pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": n} for n in self.pull_secrets]
        return pod_spec


def image_pull_problem(obj: Mapping[str, Any]) -> str | None:
    """``Reason: message`` of a container that cannot get its image, else ``None``."""
    for cs in obj.get("status", {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return None
