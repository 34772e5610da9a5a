"""Controllers whose work the lab does not need, run as containers that only stay up.

Their pods, labels and owners are what the API shows of them (operators, Typha,
kube-controllers); running their real command would only fail for want of the binary.
"""

from __future__ import annotations

import asyncio

from netdoctor.lab.containers import ContainerContext, builtin


@builtin(r"cilium/operator-generic:|tigera/operator:|calico/kube-controllers:|calico/typha:|"
         r"hardened-cluster-autoscaler:|kube-rbac-proxy:|cluster-dns-operator:")
class Idle:
    """A container that logs its start and runs until stopped."""

    async def run(self, ctx: ContainerContext) -> int:
        """Wait until the kubelet stops the container."""
        ctx.log(f"{ctx.container.get('name')} started")
        await asyncio.Event().wait()
        return 0
