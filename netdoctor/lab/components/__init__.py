"""The cluster's own components, run by the lab as built-in containers.

Importing a module registers its container with :func:`netdoctor.lab.containers.builtin`.
"""

from netdoctor.lab.components import coredns, echo, kube_proxy

__all__ = ["coredns", "echo", "kube_proxy"]
