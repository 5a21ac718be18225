package nsnet

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"
)

// Nameservers returns the host's IPv4 name servers that a sandbox of scope
// can use, for the resolv.conf the driver writes into it. systemd-resolved's
// upstream list is preferred over its loopback stub. Loopback servers are
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
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
			continue
		}
		if scope == ScopePublic && isBlocked(a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// blockedRanges lists the destinations a public sandbox may not reach.
func blockedRanges() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func isBlocked(a netip.Addr) bool {
	for _, p := range blockedRanges() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
