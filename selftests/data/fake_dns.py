"""Tiny authoritative DNS server used only to capture resolver output samples.

Answers inside a scratch network namespace (see capture_samples.sh):
``*.svc.cluster.local`` names listed in ``RECORDS`` get A records, ``servfail.test`` gets SERVFAIL,
everything else NXDOMAIN.
"""

import socket
import sys

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

RECORDS = {
    "kubernetes.default.svc.cluster.local.": ["10.96.0.1"],
    "web.default.svc.cluster.local.": ["10.96.12.7", "10.96.12.8"],
}


def answer(data: bytes) -> bytes:
    request = DNSRecord.parse(data)
    reply = request.reply()
    qname = str(request.q.qname)
    if qname == "servfail.test.":
        reply.header.rcode = RCODE.SERVFAIL
    elif qname in RECORDS:
        if request.q.qtype == QTYPE.A:
            for address in RECORDS[qname]:
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=30))
    else:
        reply.header.rcode = RCODE.NXDOMAIN
    return reply.pack()


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sys.argv[1], 53))
    while True:
        data, peer = sock.recvfrom(4096)
        sock.sendto(answer(data), peer)


if __name__ == "__main__":
    main()
