#!/bin/sh
# Capture real ping / nslookup / dig / curl output for the parser tests.
#
# Everything runs inside a scratch network namespace: no packet leaves the machine.
#   127.0.0.1        loopback: answers ping; fake_dns.py serves DNS on 127.0.0.53
#   10.200.0.1/24    on a veth whose peer has no address: 10.200.0.99 never answers ARP
#                    ("Destination Host Unreachable")
#   10.200.0.50      permanent neighbour entry: packets leave, nothing answers (plain loss,
#                    DNS "connection timed out")
#   10.201.0.1       no route at all ("Network unreachable")
# Usage (root): sh capture_samples.sh OUTDIR [PYTHON]
set -u
out=${1:?outdir}; py=${2:-python3}; ns=ndtd-x; here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
ip netns add $ns
trap 'kill $dns_pid $http_pid 2>/dev/null; ip netns del $ns' EXIT
ip -n $ns link set lo up
ip -n $ns link add v0 type veth peer name v1
ip -n $ns addr add 10.200.0.1/24 dev v0
ip -n $ns link set v0 up; ip -n $ns link set v1 up
ip -n $ns neigh add 10.200.0.50 lladdr 02:00:00:00:00:50 dev v0 nud permanent
ip netns exec $ns "$py" "$here/fake_dns.py" 127.0.0.53 & dns_pid=$!
ip netns exec $ns "$py" -m http.server 8080 --bind 127.0.0.1 --directory "$here" >/dev/null 2>&1 &
http_pid=$!
sleep 1

run() {  # run NAME CMD...: store stdout, stderr and the exit code
    name=$1; shift
    ip netns exec $ns "$@" >"$out/$name.stdout" 2>"$out/$name.stderr"
    echo $? >"$out/$name.rc"
}
W='http_code=%{http_code} time_total=%{time_total} exitcode=%{exitcode} remote_ip=%{remote_ip}\n'

run iputils-ping-ok             ping -c 3 -W 1 -i 0.2 127.0.0.1
run iputils-ping-host-unreach   ping -c 5 -W 1 10.200.0.99
run iputils-ping-loss           ping -c 2 -W 1 10.200.0.50
run iputils-ping-net-unreach    ping -c 2 -W 1 10.201.0.1
run busybox-ping-ok             busybox ping -c 3 -W 1 127.0.0.1
run busybox-ping-host-unreach   busybox ping -c 5 -W 1 10.200.0.99
run busybox-ping-loss           busybox ping -c 2 -W 1 10.200.0.50
run busybox-ping-net-unreach    busybox ping -c 2 -W 1 10.201.0.1

run bind-nslookup-ok            nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 127.0.0.53
run bind-nslookup-nxdomain      nslookup -timeout=1 -retry=1 nope.default.svc.cluster.local 127.0.0.53
run bind-nslookup-servfail      nslookup -timeout=1 -retry=1 servfail.test 127.0.0.53
run bind-nslookup-timeout       nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 10.200.0.50
run bind-nslookup-refused       nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 127.0.0.1
run busybox-nslookup-ok         busybox nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 127.0.0.53
run busybox-nslookup-nxdomain   busybox nslookup -timeout=1 -retry=1 nope.default.svc.cluster.local 127.0.0.53
run busybox-nslookup-servfail   busybox nslookup -timeout=1 -retry=1 servfail.test 127.0.0.53
run busybox-nslookup-timeout    busybox nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 10.200.0.50
run busybox-nslookup-refused    busybox nslookup -timeout=1 -retry=1 web.default.svc.cluster.local 127.0.0.1

run dig-ok                      dig +time=1 +tries=1 @127.0.0.53 web.default.svc.cluster.local A
run dig-short-ok                dig +short +time=1 +tries=1 @127.0.0.53 web.default.svc.cluster.local A
run dig-nxdomain                dig +time=1 +tries=1 @127.0.0.53 nope.default.svc.cluster.local A
run dig-short-nxdomain          dig +short +time=1 +tries=1 @127.0.0.53 nope.default.svc.cluster.local A
run dig-servfail                dig +time=1 +tries=1 @127.0.0.53 servfail.test A
run dig-timeout                 dig +time=1 +tries=1 @10.200.0.50 web.default.svc.cluster.local A
run dig-short-timeout           dig +short +time=1 +tries=1 @10.200.0.50 web.default.svc.cluster.local A
run dig-refused                 dig +time=1 +tries=1 @127.0.0.1 web.default.svc.cluster.local A

run curl-ok                     curl -sS -o /dev/null -m 2 -w "$W" http://127.0.0.1:8080/
run curl-404                    curl -sS -o /dev/null -m 2 -w "$W" http://127.0.0.1:8080/missing
run curl-refused                curl -sS -o /dev/null -m 2 -w "$W" http://127.0.0.1:9/
run curl-timeout                curl -sS -o /dev/null -m 2 -w "$W" http://10.200.0.50:80/
