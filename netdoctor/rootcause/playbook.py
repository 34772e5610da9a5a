"""What to run to confirm each root cause by hand, and to fix it, as exact commands.

The commands work on any cluster a user has ``kubectl`` access to: node-level ones go
through ``kubectl debug node/NODE`` (the node's filesystem at ``/host``), so no SSH access is
assumed. Every repair here is also what ``pytest --remediate`` plans (and verifies); the
commands are for those who repair by hand. A cause without an entry gets none: the report
then shows its evidence only.

Example:
    >>> book = commands("ip-forward-off", "worker-2", "")
    >>> book.confirm[0]
    'kubectl debug node/worker-2 -it --image=busybox:1.36 -- cat /proc/sys/net/ipv4/ip_forward'
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

DEBUG_IMAGE = "busybox:1.36"
"""Pinned (never ``latest``); busybox has every tool the confirm commands use."""


@dataclass(frozen=True)
class Commands:
    """Commands that confirm a cause, and commands that fix it."""

    confirm: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()


def on_node(node: str, script: str, *, change: bool = False) -> str:
    """A command that runs ``script`` on ``node`` (in the host's root with ``change``)."""
    if change:
        return (f"kubectl debug node/{node} -it --profile=sysadmin --image={DEBUG_IMAGE} -- "
                f"chroot /host sh -c {shlex.quote(script)}")
    return f"kubectl debug node/{node} -it --image={DEBUG_IMAGE} -- {script}"


def _restart_runtime(node: str) -> str:
    return on_node(node, "systemctl restart containerd || systemctl restart crio", change=True)


def _node_pods(node: str) -> str:
    return f"kubectl get pods -A -o wide --field-selector spec.nodeName={node}"


def _pod_cidr(node: str) -> str:
    return f"kubectl get node {node} -o jsonpath='{{.spec.podCIDR}}'"


def _vxlan_state(node: str) -> str:
    return on_node(node, "sh -c 'ip route; ip neigh show dev flannel.1; "
                         "bridge fdb show dev flannel.1'")


def _restart_flannel(node: str) -> str:
    return (f"kubectl -n kube-flannel delete pod -l app=flannel --field-selector "
            f"spec.nodeName={node}  # its agent rewrites routes, neighbours and FDB entries")


def _path_commands(cause: str, node: str, peer: str | None, subject: str) -> Commands | None:
    """Commands of causes on the path between nodes (``peer``: the other end, if any)."""
    ends = f"{node} {peer}" if peer else node
    ips = (f"kubectl get node {ends} -o custom-columns=NAME:.metadata.name,"
           "IP:.status.addresses[0].address,PODCIDR:.spec.podCIDR,"
           "VTEP:.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-data")
    state = "sh -c 'ip route; ip -d link; iptables-nft-save'"
    table = {
        "vxlan-fdb-stale": Commands((_vxlan_state(node), ips), (_restart_flannel(node),)),
        "vxlan-neighbor-stale": Commands((_vxlan_state(node), ips), (_restart_flannel(node),)),
        "pod-route-missing": Commands((on_node(node, "ip route"), ips),
                                      (_restart_flannel(node),)),
        "mtu-mismatch": Commands(
            (on_node(node, "ip -d link"), on_node(node, "cat /host/run/flannel/subnet.env"),
             f"{ips}  # then ip -d link on another node, to compare"),
            (f"# set the underlay MTU of {node} back to the other nodes' (netplan, "
             "NetworkManager or the cloud's NIC settings); then restart its Flannel agent",
             _restart_flannel(node))),
        "masquerade-missing": Commands(
            (on_node(node, "iptables-save -t nat", change=True)
             + "  # compare with another node's",),
            (_restart_flannel(node) + " (the agent owning the pod network's NAT rules)",)),
        "host-firewall": Commands(
            (on_node(node, "sh -c 'iptables-nft-save; iptables-legacy-save; "
                           "nft list ruleset'", change=True),),
            (f"# remove the rule from {node}'s firewall configuration (firewalld, ufw, "
             f"nftables.conf or the tool that wrote it): {subject or 'see the evidence'}",)),
        "dns-replica-unresponsive": _replica_commands(node, subject),
        "path-unexplained": Commands(
            (ips, on_node(node, state, change=True),
             *((on_node(peer, state, change=True),) if peer else ())),
            (f"# no node fact explains it: check the underlay of {ends} (cloud security "
             "groups, switches, the hypervisor's firewall)",)),
    }
    return table.get(cause)


def _replica_commands(node: str, subject: str) -> Commands:
    ns, _, pod = subject.partition("/")
    ns, pod = ns or "kube-system", pod or "POD"
    return Commands((f"kubectl -n {ns} get pod {pod} -o wide  # on {node}",
                     f"kubectl -n {ns} logs {pod} --tail=50  # the replica on {node}"),
                    (f"kubectl -n {ns} delete pod {pod}  # its controller starts a new replica "
                     f"(on {node} or elsewhere)",))


def _per_node(cause: str, node: str, subject: str) -> Commands | None:
    cni_dir = "/etc/cni/net.d"
    table = {
        "cni-config-shadowed": Commands(
            (on_node(node, f"ls -l /host{cni_dir}"), _pod_cidr(node), _node_pods(node)),
            (on_node(node, f"mkdir -p /root/cni-disabled && mv {cni_dir}/{subject or 'FILE'} "
                           "/root/cni-disabled/", change=True),
             _restart_runtime(node),
             f"{_node_pods(node)}  # then delete the pods listed above as outside the "
             "podCIDR: their controllers recreate them with a right address")),
        "cni-bridge-conflict": Commands(
            (on_node(node, "sh -c 'ip -4 addr show cni0; cat /host/run/flannel/subnet.env'"),),
            (on_node(node, "ip link delete cni0 && rm -rf /var/lib/cni/networks/cbr0",
                     change=True), _restart_runtime(node))),
        "pod-ip-outside-podcidr": Commands(
            (_pod_cidr(node), _node_pods(node), on_node(node, f"ls -l /host{cni_dir}")),
            (on_node(node, f"ls -l /host{cni_dir}") + "  # keep only the cluster CNI's config",
             f"{_node_pods(node)}  # then delete the pods outside the podCIDR: their "
             "controllers recreate them")),
        "vxlan-incomplete": Commands(
            (on_node(node, "sh -c 'ip -d link show flannel.1; ip route; "
                           "bridge fdb show dev flannel.1'"),),
            (f"kubectl -n kube-flannel delete pod -l app=flannel "
             f"--field-selector spec.nodeName={node}",)),
        "ip-forward-off": Commands(
            (on_node(node, "cat /proc/sys/net/ipv4/ip_forward"),),
            (on_node(node, "sysctl -w net.ipv4.ip_forward=1 && echo net.ipv4.ip_forward=1 "
                           "> /etc/sysctl.d/90-netdoctor.conf", change=True),)),
        "br-netfilter-off": Commands(
            (on_node(node, "cat /proc/sys/net/bridge/bridge-nf-call-iptables"),),
            (on_node(node, "modprobe br_netfilter && echo br_netfilter > "
                           "/etc/modules-load.d/br_netfilter.conf && sysctl -w "
                           "net.bridge.bridge-nf-call-iptables=1 && echo "
                           "net.bridge.bridge-nf-call-iptables=1 > "
                           "/etc/sysctl.d/91-netdoctor.conf", change=True),)),
        "iptables-mixed-backend": Commands(
            (on_node(node, "cat /proc/net/ip_tables_names"),
             on_node(node, "iptables-nft-save -t nat | grep -c KUBE-", change=True)),
            (on_node(node, "iptables-legacy -t nat -F && iptables-legacy -t nat -X",
                     change=True),
             f"kubectl -n kube-system delete pod -l k8s-app=kube-proxy "
             f"--field-selector spec.nodeName={node}")),
        "rp-filter-strict": Commands(
            (on_node(node, "cat /proc/sys/net/ipv4/conf/all/rp_filter"),),
            (on_node(node, "sysctl -w net.ipv4.conf.all.rp_filter=2 && echo "
                           "net.ipv4.conf.all.rp_filter=2 > /etc/sysctl.d/92-netdoctor.conf",
                     change=True),)),
        "netfilter-unmanageable": Commands(
            (on_node(node, "iptables-nft -S", change=True),
             f"kubectl -n kube-system logs -l k8s-app=kube-proxy --tail=50 "
             f"--field-selector spec.nodeName={node}"),
            ()),
    }
    return table.get(cause)


def _cluster_wide(cause: str, subject: str) -> Commands | None:
    ns, _, name = subject.partition("/")
    # DNS causes name the workload serving cluster DNS as namespace/kind/name; kubeadm's
    # CoreDNS stands in only when the run found none.
    dns_ns, dns_kind, dns_name = (subject.split("/", 2) if subject.count("/") == 2
                                  else ("kube-system", "deployment", "coredns"))
    table = {
        "flannel-missing": Commands(
            ("kubectl get daemonsets -A -l app=flannel",
             "kubectl get nodes -o custom-columns=NAME:.metadata.name,"
             "PODCIDR:.spec.podCIDR"),
            ("kubectl apply -f remediation/manifests/kube-flannel-v0.25.5.yml  "
             "# the pinned manifest pytest --remediate applies",)),
        "cni-agent-missing": Commands(
            ("kubectl get daemonsets -A -o wide",
             "kubectl get nodes -o custom-columns=NAME:.metadata.name,"
             "READY:.status.conditions[?(@.type=='Ready')].status"),
            ("# reinstall the CNI's agent DaemonSet with the installer or operator the cluster "
             "was built with (netdoctor applies no manifest of another CNI)",)),
        "coredns-cannot-reach-api": Commands(
            (f"kubectl -n {dns_ns} logs {dns_kind}/{dns_name} --tail=50",
             f"kubectl -n {dns_ns} describe {dns_kind} {dns_name}"),
            (f"kubectl -n {dns_ns} rollout restart {dns_kind} {dns_name}  "
             "# after repairing the network of its node",)),
        "upstream-dns-unreachable": Commands(
            (f"kubectl -n {dns_ns} logs {dns_kind}/{dns_name} --tail=50",
             f"kubectl -n {dns_ns} get {dns_kind} {dns_name} "
             "-o jsonpath='{.spec.template.spec.volumes[*].configMap.name}'  "
             "# the ConfigMap holding its Corefile"),
            (f"kubectl -n {dns_ns} edit configmap CONFIGMAP  "
             "# that ConfigMap: point 'forward .' at a resolver the nodes reach",)),
        "service-selector-matches-nothing": Commands(
            (f"kubectl -n {ns or 'NAMESPACE'} get service {name or 'NAME'} "
             "-o jsonpath='{.spec.selector}'",
             f"kubectl -n {ns or 'NAMESPACE'} get pods --show-labels"),
            (f"kubectl -n {ns or 'NAMESPACE'} edit service {name or 'NAME'}  "
             "# make the selector match the pods' labels",)),
    }
    return table.get(cause)


def commands(cause: str, node: str | None, subject: str, peer: str | None = None
             ) -> Commands:
    """The confirm and fix commands of ``cause`` on ``node`` (``None``: cluster-wide).

    Args:
        cause: A root cause id (``cni-config-shadowed``).
        node: The node it lives on.
        subject: The object it is about, when there is one (the winning CNI config file,
            a Service as ``namespace/name``); ``""`` otherwise.
        peer: The other node of a cause between two nodes.
    """
    found = ((_path_commands(cause, node, peer, subject)
              or _per_node(cause, node, subject)) if node else None)
    return found or _cluster_wide(cause, subject) or Commands()
