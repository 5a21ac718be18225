// Package nsnet is the networking of sbx's sandboxes on Linux, for both
// drivers: one network namespace per sandbox of the namespace (ns) driver,
// a tap device per microVM of the krun driver, a Linux bridge per network
// group, veth pairs, nftables rules enforcing the sandbox's scope, a DNS
// forwarder, and a userspace proxy for published ports.
//
// The supervisor of a sandbox calls [Setup] before it starts the payload and
// hands [Handle.NetNSPath] to the payload's child, which joins it with
// setns(2). [Teardown] undoes everything and needs nothing but the project
// and sandbox names, so `sbx down` can clean up after a supervisor that was
// killed with SIGKILL. [List] reports what a project still owns.
//
// # Names
//
// Every name is derived from the project and the sandbox or network name, so
// it can be found again without any record:
//
//	netns      /run/sbx/netns/<project>/<sandbox>   (bind mount of an nsfs file)
//	bridge     sbxb + 10 hex of sha256(project, "network", network)
//	veth       sbxv + 10 hex of sha256(project, "sandbox", sandbox)  (host side)
//	           eth0                                                  (inside)
//	tap        sbxt + the same 10 hex                                (VMs, SetupTap)
//	alias      "sbx:<project>/network/<network> <subnet>" on a bridge,
//	           "sbx:<project>/sandbox/<sandbox> <ip>" on a veth (IFLA_IFALIAS)
//	rule tag   "sbx:<project>/network/<network>" or "sbx:<project>/sandbox/<sandbox>"
//	           as the rule's comment (nftables user data)
//	lock       /run/sbx/net.lock (flock; every Setup, Teardown and List holds it)
//	MAC        02:42 + the four bytes of the IPv4 address ([MACFor]): a
//	           sandbox's eth0 from its address, a bridge from its gateway's
//
// Because a sandbox's MAC follows from its address, a sandbox that is
// restarted or replaced (same address, new veth) is reachable at once: the
// neighbour entries that the host and the group's other members hold for it
// stay right. Setup also deletes the host's entry for the address and, once
// the bridge forwards the new port, sends a gratuitous ARP from inside the
// namespace.
//
// Names must not contain "/", white space or control characters; a project
// name has at most [MaxProjectLen] bytes, sandbox and network names
// [MaxNameLen]. sbx passes the project as its name and a short hash of its
// directory ("shop-1f2e3d4c"), so two directories called shop share
// nothing: every name above hashes or contains the whole project name, and
// ownership is decided on the whole name, never a prefix.
//
// Sandboxes of scope public or any that name no group share a per-project
// default network (named "@default", which no Sandboxfile network can be
// called): a /24 in 10.199.0.0/16, the third octet starting at the first
// byte of sha256(project) and moving on past any subnet a host route
// (another project's bridge, a VPN, a LAN) already covers. Its sandboxes get
// addresses allocated from a hash of their name and cannot reach each other:
// their bridge ports are isolated and the firewall does not route between
// them.
//
// # Virtual machines: taps
//
// The krun driver uses the same bridges, addresses, firewall rules, DNS
// forwarder and port proxies; only the sandbox's end differs. As root,
// before the VMM starts:
//
//	h, err := nsnet.SetupTap(ctx, nsnet.Net{Project: p, Name: name, Scope: scope,
//		Group: group, Subnet: subnet, IP: ip}) // scope none: no tap, no NIC at all
//	// VMM child: krun_add_net_tap(ctx, h.TapName(), h.MAC(), features, flags)
//	// guest init: eth0 gets h.MAC(), h.MTU() and the address h.Prefix();
//	//   a default route via h.DefaultRoute() when it is valid (public, any),
//	//   none otherwise; resolv.conf is nsnet.ResolvConf(scope, dnsHandle),
//	//   where dnsHandle is h when ServeDNS succeeded and nil otherwise (the
//	//   forwarder is at h.DNS():53); then it announces its address
//	//   (gratuitous ARP, or net.ipv4.conf.eth0.arp_notify=1 and the address
//	//   set before eth0 goes up).
//	dns, err := nsnet.ServeDNS(ctx, h, nsnet.DNSUpstreams()) // public and any
//	px, err := nsnet.ListenProxy(ctx, "udp", "127.0.0.1:5353", h.Dialer("udp", 53))
//	go px.Serve(ctx)
//	// ... the VM runs ...
//	dns.Close(); px.Close()
//	nsnet.Teardown(ctx, p, name) // removes the tap; also what sbx down runs after a crash
//
// The tap is persistent and owned by root; it has no carrier, and the bridge
// does not forward on it, until the VMM attaches to it (TUNSETIFF with
// IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, which libkrun's tap backend uses; it is
// not multi-queue). The bridge-family rules hold for the tap as for a veth,
// so the guest can only send IPv4 and ARP from its own address. [Handle.Dialer]
// only dials the guest's address: the guest's loopback is out of reach.
// [PreflightTap] checks the host for all of this.
//
// # Scopes
//
//   - none: the namespace has only lo. Published ports are reached by
//     dialling 127.0.0.1 inside the namespace.
//   - group: eth0 with the sandbox's address in the group's subnet, only
//     the subnet route (no default route, so anything else fails fast with
//     "network is unreachable"). Members of a group reach each other; the
//     firewall rejects everything else they send, the host's own addresses
//     included, and drops whatever is not a reply that comes in from outside
//     the bridge.
//   - public: the group's connectivity, if it names a group, plus a default
//     route through the bridge's gateway address (the subnet's first host)
//     and masquerading to the outside. Destinations in private, shared
//     (CGNAT), loopback, link-local, documentation (TEST-NET-1/2/3),
//     benchmarking (198.18.0.0/15), IETF protocol, multicast, reserved and
//     broadcast ranges are rejected (one list, blockedRanges, which also
//     holds their IPv6 counterparts for the day sandboxes get IPv6), as are
//     the host's own addresses (but for port 53 of the gateway, the DNS
//     forwarder) and every other sbx network.
//   - any: like public with nothing blocked but other sbx networks: the host
//     and private ranges are reachable.
//
// A sandbox can only send IPv4 from its own address and ARP for its own
// address: a bridge-family rule on its veth drops everything else (spoofed
// sources, IPv6, VLAN tags), so a payload with CAP_NET_ADMIN inside its
// namespace cannot borrow the rights of another sandbox. IPv6 is off on the
// bridges and host-side veths, and the inet rules of every network reject
// IPv6 from its sandboxes too, so adding IPv6 later leaks nothing by
// default: only a per-sandbox rule (for scope any) may let it through.
//
// # nftables layout
//
// All rules live in two tables that sbx owns and deletes when no project
// uses them any more:
//
//	table inet sbx
//	  chain forward     filter hook forward, priority 0, policy accept
//	    iifname B jump from-B               per network, tagged with the network
//	    oifname B jump to-B
//	  chain input       filter hook input, priority 0, policy accept
//	    iifname B jump in-B                 per network
//	  chain postrouting nat hook postrouting, priority 100
//	    ip saddr IP oifname != "sbxb*" masquerade     per public/any sandbox
//	  chain public      the blocked destinations (reject), then accept
//	  chain from-B      what sandboxes of network B send through the host
//	    ip saddr IP oifname != "sbxb*" jump public    per public sandbox
//	    ip saddr IP oifname != "sbxb*" accept         per any sandbox
//	    meta nfproto ipv6 reject            no IPv6 from sandboxes
//	    oifname B accept                    group networks only (bridged
//	                                        traffic seen via br_netfilter)
//	    reject
//	  chain to-B        ct state established,related accept; drop
//	  chain in-B        what sandboxes of network B send to the host
//	    ip saddr IP accept                            per any sandbox
//	    ip saddr IP ip daddr GW udp dport 53 accept   per public sandbox: DNS
//	    ip saddr IP ip daddr GW tcp dport 53 accept   to its gateway GW
//	    meta nfproto ipv6 reject
//	    ct state established,related accept
//	    reject
//	table bridge sbx
//	  chain prerouting  filter hook prerouting, priority -200
//	    iifname V ip saddr != IP drop; iifname V arp saddr ip != IP drop;
//	    iifname V meta protocol != { ip, arp } drop   per sandbox
//
// Per-sandbox rules are inserted at the head of their chains and match on
// the sandbox's address, so they do not depend on the order of insertion.
// Rules are found again for removal by their comment; a per-network chain's
// name carries the bridge's name. All changes of one Setup or Teardown step
// go in one nftables transaction.
//
// Another firewall can still drop what sbx accepts: an accept verdict in
// table inet sbx does not override a drop in another table or in iptables
// (Docker sets the iptables FORWARD policy to drop, and with br_netfilter
// loaded that applies to traffic inside a bridge too).
//
// # IP forwarding
//
// net.ipv4.ip_forward is only needed for public and any. When sbx has to
// turn it on, it notes the previous value in /run/sbx/ip_forward.sbx and
// sets it back to 0 when the last public or any sandbox of any project is
// torn down (unless something else turned it off in between). While it is
// on, the host routes between all of its interfaces, not only sbx's.
//
// # DNS
//
// The host's resolver is often out of a sandbox's reach: on loopback
// (systemd-resolved's 127.0.0.53), which is the namespace's own, or in a
// private range (a home router, a cloud's 10.x resolver), which public
// blocks. So a [DNSForwarder] ([ServeDNS]) listens on UDP and TCP port 53 of
// the gateway address, on the host, and relays each query unchanged to the
// host's own name servers ([DNSUpstreams]: /etc/resolv.conf, any address);
// the sandbox's resolv.conf names the gateway ([ResolvConf]). There is one
// forwarder per public or any sandbox, run by whatever supervises it; the
// forwarders of one network bind the same gateway address with SO_REUSEPORT,
// and the kernel spreads the queries over them. The firewall lets public
// sandboxes reach the gateway on port 53 and nothing else of the host (any
// sandboxes reach all of it); group and none get no DNS: ResolvConf gives
// them a file with only a comment. When no forwarder can run (another DNS
// server holds port 53 on all addresses, without SO_REUSEPORT), ResolvConf
// falls back to the host's name servers that the scope may reach
// ([Nameservers]). Through the forwarder a public sandbox resolves what the
// host resolves, internal names of a split-horizon DNS included, though it
// still cannot reach private addresses.
//
// # Published ports
//
// A [Proxy] listens on the host address of a published port and forwards
// each TCP connection, or each UDP client's datagrams (a session per client
// address, closed after an idle timeout), to the sandbox through a
// [DialFunc]. [Handle.Dialer] dials the sandbox's address, and falls back to
// 127.0.0.1 inside the namespace when that is refused (a server bound to
// loopback only); for scope none it always dials inside the namespace.
// Sockets inside a namespace are created by [Within] on a locked OS thread
// that is discarded afterwards, so no other goroutine ever runs in the
// sandbox's namespace.
package nsnet
