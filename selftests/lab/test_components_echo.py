"""agnhost netexec: HTTP and UDP answers from inside a pod namespace."""

from __future__ import annotations

import asyncio
import re
import socket

from netdoctor.lab.components.echo import Echo, parse_args
from netdoctor.lab.nsock import socket_in
from selftests.lab.comptopo import (
    addr,
    ans_exec,
    context,
    link,
    namespaces,
    new_store,
    stop,
    tag,
    wait_for,
)


def test_parse_args() -> None:
    assert parse_args(["/agnhost", "netexec", "--http-port", "80", "--udp-port=0"]) == \
        ("netexec", {"http-port": "80", "udp-port": "0"})


def test_unknown_subcommand_exits_1() -> None:
    logs: list[str] = []
    ctx = context(new_store("default"), "ndtc-never-created", "10.9.0.2",
                  container={"name": "c", "args": ["pause"]}, logs=logs)
    assert asyncio.run(Echo().run(ctx)) == 1
    assert logs[0] == 'Error: unknown command "pause" for "agnhost"'


def test_netexec_http_and_udp() -> None:
    t = tag()
    client, pod = f"ndtc{t}c", f"ndtc{t}e"

    async def udp_ask(text: str) -> str:
        sock = socket_in(client, socket.AF_INET, socket.SOCK_DGRAM)
        loop = asyncio.get_running_loop()
        try:
            sock.connect(("10.9.0.2", 8081))
            await loop.sock_sendall(sock, text.encode())
            return (await asyncio.wait_for(loop.sock_recv(sock, 512), 2)).decode()
        finally:
            sock.close()

    async def get(path: str) -> str:
        code, out, err = await ans_exec(client, "curl", "-sS", "-m", "2",
                                        f"http://10.9.0.2:8080{path}")
        assert code == 0, err
        return out

    async def scenario() -> None:
        ctx = context(new_store("default"), pod, "10.9.0.2",
                      pod={"metadata": {"name": "echo-7", "namespace": "default"}, "spec": {}},
                      container={"name": "c", "args": ["netexec", "--http-port=8080",
                                                       "--udp-port=8081"]})
        task = asyncio.create_task(Echo().run(ctx))
        try:
            async def up() -> bool:
                assert not task.done()
                return (await ans_exec(client, "curl", "-s", "-m", "1",
                                       "http://10.9.0.2:8080/healthz"))[0] == 0
            await wait_for(up, 3, "netexec to listen")
            assert await get("/hostname") == "echo-7"
            assert re.fullmatch(r"10\.9\.0\.1:\d+", await get("/clientip"))
            assert await get("/echo?msg=hello") == "hello"
            assert (await get("/")).startswith("NOW: ")
            assert await udp_ask("hostname") == "echo-7"
            assert await udp_ask("echo ping") == "ping"
        finally:
            await stop(task)

    with namespaces(client, pod):
        link(client, "eth0", pod, "eth0")
        addr(client, "eth0", "10.9.0.1/24")
        addr(pod, "eth0", "10.9.0.2/24")
        asyncio.run(scenario())


def test_builtins_are_registered_by_image() -> None:
    import netdoctor.lab.components  # noqa: F401  (registers the built-ins)
    from netdoctor.lab.components.coredns import CoreDNS
    from netdoctor.lab.components.kube_proxy import KubeProxy
    from netdoctor.lab.containers import builtin_for

    assert isinstance(builtin_for("registry.k8s.io/kube-proxy:v1.29.0"), KubeProxy)
    assert isinstance(builtin_for("registry.k8s.io/coredns/coredns:v1.11.1"), CoreDNS)
    assert isinstance(builtin_for("registry.k8s.io/e2e-test-images/agnhost:2.47"), Echo)
    assert builtin_for("busybox:1.36") is None
