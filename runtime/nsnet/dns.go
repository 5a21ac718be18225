package nsnet

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf is the resolv.conf the driver writes into a sandbox of scope.
// h is the sandbox's handle when a [DNSForwarder] serves it ([ServeDNS]
// succeeded), and nil otherwise. Scopes public and any get the
// gateway as their name server when h is given, the host's name servers
// they can reach ([Nameservers]) otherwise; scopes none and group get a
// file with only a comment: they have no DNS.
func ResolvConf(scope string, h *Handle) string {
	if scope != ScopePublic && scope != ScopeAny {
		return fmt.Sprintf("# no DNS: network scope %q reaches no resolver\n", scope)
	}
	if h != nil && h.Gateway().IsValid() {
		return "nameserver " + h.Gateway().String() + "\n"
	}
	var b strings.Builder
	for _, a := range Nameservers(scope) {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "# no DNS: the host has no name server that network scope %q may reach\n", scope)
	}
	return b.String()
}

// DNSUpstreams returns the name servers the host itself uses, for
// [ServeDNS]: those of /etc/resolv.conf (systemd-resolved's stub
// 127.0.0.53 included: the forwarder runs on the host), or when it lists
// none, those of systemd-resolved's upstream file. Any address is allowed,
// IPv6 too; empty means the host has no resolver.
func DNSUpstreams() []netip.AddrPort {
	for _, f := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		if b, err := os.ReadFile(f); err == nil {
			if ups := dnsUpstreams(b); len(ups) > 0 {
				return ups
			}
		}
	}
	return nil
}

func dnsUpstreams(resolvConf []byte) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range resolvConfServers(resolvConf) {
		out = append(out, netip.AddrPortFrom(a, dnsPort))
	}
	return out
}

// resolvConfServers returns the addresses of the nameserver lines of a resolv.conf, in order,
// leaving out unparsable and unspecified ones.
func resolvConfServers(resolvConf []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || a.IsUnspecified() {
			continue
		}
		out = append(out, a.Unmap())
	}
	return out
}

// Nameservers returns the host's IPv4 name servers that a sandbox of scope
// can reach by itself, for its resolv.conf when no [DNSForwarder] serves
// it (see [ResolvConf]). systemd-resolved's upstream list is preferred over
// its loopback stub. Loopback servers are
// never reachable from a sandbox, and for scope public neither are those in
// blocked ranges (a LAN router, say); scopes none and group get none. An
// empty result means the sandbox has no usable resolver on this host.
func Nameservers(scope string) []netip.Addr {
	for _, f := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if ns := nameservers(b, scope); len(ns) > 0 || f == "/etc/resolv.conf" {
			return ns
		}
	}
	return nil
}

func nameservers(resolvConf []byte, scope string) []netip.Addr {
	if scope != ScopePublic && scope != ScopeAny {
		return nil
	}
	var out []netip.Addr
	for _, a := range resolvConfServers(resolvConf) {
		if !a.Is4() || a.IsLoopback() {
			continue
		}
		if scope == ScopePublic && isBlocked(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// blockedRanges lists the destinations a public sandbox may not reach: the
// one definition of the public scope, used by the firewall's public chain
// and by [Nameservers].
//
// IPv4: this network (0/8), private (10/8, 172.16/12, 192.168/16), shared
// address space (CGNAT, 100.64/10), loopback, link-local, IETF protocol
// assignments (192.0.0/24), the documentation ranges TEST-NET-1/2/3
// (192.0.2/24, 198.51.100/24, 203.0.113/24) and the benchmarking range
// (198.18/15), which some LANs use, and multicast, reserved and broadcast
// (224/3 = 224/4 + 240/4).
//
// IPv6, for when sandboxes get IPv6 (they have none yet): unspecified,
// loopback, ULA (fc00::/7), link-local, site-local, multicast, discard,
// IETF protocol assignments (Teredo included), documentation, 6to4, local
// NAT64, SRv6, and every blocked IPv4 range in its IPv4-mapped
// (::ffff:0:0/96) and NAT64 (64:ff9b::/96) form, so that no translation
// reaches what the IPv4 list blocks.
func blockedRanges() []netip.Prefix {
	v4 := []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
	}
	v6 := []string{
		"::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
		"5f00::/16", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	}
	var out []netip.Prefix
	for _, s := range v4 {
		out = append(out, netip.MustParsePrefix(s))
	}
	for _, s := range v6 {
		out = append(out, netip.MustParsePrefix(s))
	}
	for _, s := range v4 {
		p := netip.MustParsePrefix(s)
		a := p.Addr().As4()
		for _, base := range []netip.Addr{netip.MustParseAddr("::ffff:0:0"), netip.MustParseAddr("64:ff9b::")} {
			b := base.As16()
			copy(b[12:], a[:])
			out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 96+p.Bits()))
		}
	}
	return out
}

func isBlocked(a netip.Addr) bool {
	if a.Zone() != "" {
		return true // scoped: link-local or multicast
	}
	for _, p := range blockedRanges() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
