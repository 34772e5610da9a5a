"""The lab's data plane: namespaces, veth pairs, bridges, VXLAN and iptables.

Every interface, address and route lives in a namespace the lab created, named
``<prefix>-...``; nothing is added to the host's own namespace and no lab interface
connects to the host network. :func:`netdoctor.lab.net.topology.destroy` removes
everything under a prefix.

Fixed addressing: underlay 192.168.4.0/24 behind a router at 192.168.4.1, node
``i`` at 192.168.4.(10+i) with pod subnet 10.244.i.0/24, pod MTU 1450.
"""
