"""The lab's image registry: which images a node can pull, and how a failed pull looks.

Images the lab implements itself (built-in components) are always present, like images
preloaded on a node. Other images pull only when the registry knows them (the images the
lab's workloads and the suite's defaults use, plus any added with ``lab up --image``);
anything else fails as containerd reports a missing reference, so the kubelet shows
``ErrImagePull``, then ``ImagePullBackOff``, with its Events.

Example:
    >>> normalize("busybox:1.36.1"), normalize("docker.io/nicolaka/netshoot:v0.13")
    ('docker.io/library/busybox:1.36.1', 'docker.io/nicolaka/netshoot:v0.13')
    >>> parse_error("Busybox:1").endswith("repository name must be lowercase")
    True
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netdoctor.lab.containers import builtin_for

KNOWN_IMAGES = (
    "registry.k8s.io/kube-proxy:v1.29.0",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "docker.io/flannel/flannel:v0.25.5",
    "docker.io/flannel/flannel:v0.25.6",
    "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel1",
    "nicolaka/netshoot:v0.13",
    "busybox:1.36",
    "busybox:1.36.1",
    "registry.k8s.io/e2e-test-images/agnhost:2.47",
    "registry.k8s.io/e2e-test-images/agnhost:2.53",
)
"""Images the lab's workloads, faults and tests use, and the suite's default images."""

_REFERENCE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


def parse_error(image: str) -> str | None:
    """containerd's complaint about a malformed reference, or ``None`` when it parses."""
    if _REFERENCE.match(image):
        return None
    detail = "invalid reference format"
    if image.lower() != image and _REFERENCE.match(image.lower()):
        detail += ": repository name must be lowercase"
    return f'couldn\'t parse image name "{image}": {detail}'


def normalize(image: str) -> str:
    """The fully qualified reference (``docker.io/library/`` for short names, as containerd)."""
    name, at, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and not at:
        name += ":latest"
    return name + at + digest


CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    """What an image's config sets for its containers: PATH and the working directory."""

    path: str
    workdir: str


def product_image(image: str) -> bool:
    """An image of netdoctor itself (repository ``.../netdoctor``): in the lab it runs this
    checkout with the lab's own Python, as an image built from it would."""
    return normalize(image).split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "netdoctor"


@dataclass
class Registry:
    """What the nodes can pull."""

    images: set[str] = field(default_factory=lambda: {normalize(i) for i in KNOWN_IMAGES})

    def add(self, images: Iterable[str]) -> None:
        """Make more images pullable."""
        self.images |= {normalize(i) for i in images}

    def config(self, image: str) -> ImageConfig | None:
        """The image config the lab knows for ``image`` (only netdoctor's own image)."""
        if not product_image(image):
            return None
        return ImageConfig(f"{Path(sys.executable).parent}:{DEFAULT_PATH}", str(CHECKOUT))

    def pull_error(self, image: str) -> str | None:
        """Why pulling ``image`` fails as containerd words it, or ``None`` when it pulls."""
        if builtin_for(image) is not None or normalize(image) in self.images:
            return None
        ref = normalize(image)
        return (f"rpc error: code = NotFound desc = failed to pull and unpack image \"{ref}\": "
                f"failed to resolve reference \"{ref}\": {ref}: not found")
