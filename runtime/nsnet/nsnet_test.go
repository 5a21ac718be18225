package nsnet

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, name := range []string{BridgeName("shop", "backend"), VethName("shop", "db"), BridgeName("p", DefaultNetwork)} {
		if len(name) > 15 {
			t.Errorf("%s is longer than IFNAMSIZ-1", name)
		}
	}
	// Pinned: a later sbx must find what an earlier one created.
	if got := BridgeName("shop", "backend"); got != "sbxb375138ff7e" {
		t.Errorf("BridgeName = %s", got)
	}
	if got := VethName("shop", "db"); got != "sbxv38ae2b4e2b" {
		t.Errorf("VethName = %s", got)
	}
	distinct := map[string]bool{
		BridgeName("shop", "backend"): true, BridgeName("shop", "front"): true, BridgeName("shop2", "backend"): true,
		VethName("shop", "db"): true, VethName("shop", "api"): true, VethName("sho", "pdb"): true,
	}
	if len(distinct) != 6 {
		t.Errorf("names collide: %v", distinct)
	}
	if got := NetNSPath("shop", "db"); got != "/run/sbx/netns/shop/db" {
		t.Errorf("NetNSPath = %s", got)
	}
}

func TestTags(t *testing.T) {
	tests := []struct {
		in                  string
		project, kind, name string
		value               string
		ok                  bool
	}{
		{networkTag("shop", "backend") + " 10.88.0.0/24", "shop", "network", "backend", "10.88.0.0/24", true},
		{sandboxTag("shop", "db"), "shop", "sandbox", "db", "", true},
		{networkTag("p", DefaultNetwork), "p", "network", DefaultNetwork, "", true},
		{"sbx:shop/other/x", "", "", "", "", false},
		{"docker0", "", "", "", "", false},
		{"", "", "", "", "", false},
	}
	for _, tt := range tests {
		p, k, n, v, ok := parseTag(tt.in)
		if p != tt.project || k != tt.kind || n != tt.name || v != tt.value || ok != tt.ok {
			t.Errorf("parseTag(%q) = %q %q %q %q %v", tt.in, p, k, n, v, ok)
		}
	}
	if !ownedBy(sandboxTag("a", "b"), "a") || ownedBy(sandboxTag("a", "b"), "ab") || !ownedBy(sandboxTag("a", "b"), "") {
		t.Error("ownedBy")
	}
}

func TestValidate(t *testing.T) {
	sn := netip.MustParsePrefix("10.88.0.0/24")
	tests := []struct {
		n    Net
		want string // "" = valid
	}{
		{Net{Project: "p", Name: "a", Scope: ScopeNone}, ""},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: netip.MustParseAddr("10.88.0.2")}, ""},
		{Net{Project: "p", Name: "a", Scope: ScopePublic}, ""},
		{Net{Project: "p", Name: "a", Scope: ScopeAny, Subnet: sn}, ""},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup}, "needs a network group"},
		{Net{Project: "p", Name: "a", Scope: ScopeNone, Group: "g"}, "scope none cannot be in network"},
		{Net{Project: "p", Name: "a", Scope: "lan"}, "unknown network scope"},
		{Net{Project: "p/q", Name: "a", Scope: ScopeNone}, "project name"},
		{Net{Project: "p", Name: "", Scope: ScopeNone}, "sandbox name"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn}, "needs both"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: netip.MustParseAddr("10.88.0.1")}, "reserved"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: netip.MustParseAddr("10.88.0.255")}, "reserved"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: netip.MustParseAddr("10.89.0.2")}, "outside the subnet"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: netip.MustParsePrefix("10.88.0.1/24"), IP: netip.MustParseAddr("10.88.0.2")}, "host bits"},
		{Net{Project: "p", Name: "a", Scope: ScopeGroup, Group: "g", Subnet: netip.MustParsePrefix("10.88.0.0/31"), IP: netip.MustParseAddr("10.88.0.1")}, "between /8 and /30"},
	}
	for _, tt := range tests {
		err := tt.n.validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.n, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.n, err, tt.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for _, tt := range []struct{ subnet, gw, bcast string }{
		{"10.88.0.0/24", "10.88.0.1", "10.88.0.255"},
		{"10.88.0.0/16", "10.88.0.1", "10.88.255.255"},
		{"192.168.4.8/30", "192.168.4.9", "192.168.4.11"},
	} {
		p := netip.MustParsePrefix(tt.subnet)
		if g := gateway(p).String(); g != tt.gw {
			t.Errorf("gateway(%s) = %s", p, g)
		}
		if b := broadcast(p).String(); b != tt.bcast {
			t.Errorf("broadcast(%s) = %s", p, b)
		}
	}
}

func TestNameservers(t *testing.T) {
	conf := []byte("# comment\nnameserver 127.0.0.53\nnameserver 192.168.1.1\nnameserver 9.9.9.9\nnameserver 2620:fe::fe\noptions edns0\n")
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tt := range []struct {
		scope string
		want  []netip.Addr
	}{
		{ScopePublic, addrs("9.9.9.9")},
		{ScopeAny, addrs("192.168.1.1", "9.9.9.9")},
		{ScopeGroup, nil},
		{ScopeNone, nil},
	} {
		if got := nameservers(conf, tt.scope); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.scope, got, tt.want)
		}
	}
}

func TestBlockedRanges(t *testing.T) {
	blocked := []string{
		"0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "169.254.1.1", "172.31.0.1",
		"192.0.0.9", "192.0.2.1", "192.168.1.1", "198.18.0.1", "198.19.255.254", "198.51.100.1",
		"203.0.113.1", "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "fd00::1", "fe80::1", "fe80::1%eth0", "ff02::1", "2001:db8::1", "2001::1", "2002:a00:1::1",
		"64:ff9b::a00:1", "64:ff9b::c000:201", "64:ff9b:1::1", "::ffff:10.0.0.1", "::ffff:198.18.0.1", "3fff::1", "100::1",
	}
	allowed := []string{
		"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.32.0.1", "192.0.1.1", "192.88.99.2",
		"198.17.255.255", "198.20.0.0", "203.0.114.1", "223.255.255.255",
		"2606:4700:4700::1111", "2a00:1450::1", "64:ff9b::808:808", "::ffff:8.8.8.8",
	}
	for _, s := range blocked {
		if !isBlocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is not blocked", s)
		}
	}
	for _, s := range allowed {
		if isBlocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is blocked", s)
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range blockedRanges() {
		if p != p.Masked() || seen[p] {
			t.Errorf("%s: not masked or listed twice", p)
		}
		seen[p] = true
	}
}
