# Collects one node's network facts, read-only, from a privileged hostNetwork pod that
# mounts the node's root at /host. Each section starts with a '### name' line.
# Legacy iptables is read only when its tables already exist: listing creates them
# (procfs files report size 0, so test for content, not size).
sec() { printf '### %s\n' "$1"; }
exec 3>&1  # the script's stdout, for a command whose stderr alone is captured
sec cni-files
# The default directory, then k3s's own (its containerd reads only that one).
for d in /host/etc/cni/net.d /host/var/lib/rancher/k3s/agent/etc/cni/net.d; do
  [ -d "$d" ] || continue
  printf '+++ %s\n' "$d"
  for f in "$d"/*; do [ -f "$f" ] && printf -- '--- %s\n' "${f##*/}" && cat "$f" && echo; done
done
sec cni-bin
ls /host/opt/cni/bin 2>/dev/null
sec subnet-env
cat /host/run/flannel/subnet.env 2>/dev/null
sec addr
ip -j addr 2>/dev/null
sec route
ip -j route 2>/dev/null
sec neigh
ip -j neigh show dev flannel.1 2>/dev/null
sec fdb
bridge -j fdb show dev flannel.1 2>/dev/null
sec sysctl
for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/ipv4/conf/all/rp_filter; do
  v=missing; read -r v 2>/dev/null <"/proc/sys/$k"  # a builtin: no process per switch
  printf '%s=%s\n' "$k" "$v"
done
sec legacy-tables
cat /proc/net/ip_tables_names 2>/dev/null
sec nft-save
# Run once (on a node with many Services it is the slowest command here): its rules go to
# stdout, its warnings are kept and printed in their own section.
w=$(iptables-nft-save 2>&1 1>&3 3>&-)
sec nft-warnings
[ -n "$w" ] && printf '%s\n' "$w"
sec legacy-save
grep -q . /proc/net/ip_tables_names 2>/dev/null && iptables-legacy-save 2>/dev/null
sec nft-ruleset
# Tables written with nft directly (a host firewall in any nftables table); iptables-nft's own
# tables are read above.
nft list ruleset 2>/dev/null
sec end
