//go:build linux

package nsnet

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestProjectNames checks that every host-side name stays within the
// kernel's limits and apart between projects that share their name but not
// their directory's hash, up to the longest names allowed.
func TestProjectNames(t *testing.T) {
	long := strings.Repeat("x", 64)
	projects := []string{"app-0123abcd", "app-89abcdef", long + "-0123abcd", long + "-89abcdef",
		strings.Repeat("p", MaxProjectLen)}
	names := []string{"web", DefaultNetwork, strings.Repeat("n", MaxNameLen)}
	seen := map[string]string{}
	unique := func(kind, v, from string) {
		t.Helper()
		if other, ok := seen[kind+" "+v]; ok {
			t.Errorf("%s %s of %s is also that of %s", kind, v, from, other)
		}
		seen[kind+" "+v] = from
	}
	for _, p := range projects {
		if err := checkName("project", p); err != nil {
			t.Errorf("checkName(%q): %v", p, err)
		}
		for _, n := range names {
			from := p + "/" + n
			for kind, ifname := range map[string]string{"bridge": BridgeName(p, n), "veth": VethName(p, n)} {
				if len(ifname) > 15 {
					t.Errorf("%s %s of %s is longer than IFNAMSIZ-1", kind, ifname, from)
				}
				unique("link", ifname, from)
				for _, chain := range []string{fromChain(ifname), toChain(ifname), inChain(ifname)} {
					if len(chain) > 31 { // NFT_CHAIN_MAXNAMELEN before Linux 5.5, with its NUL
						t.Errorf("chain %s is too long", chain)
					}
				}
			}
			unique("netns", NetNSPath(p, n), from)
			for _, tag := range []string{networkTag(p, n), sandboxTag(p, n)} {
				unique("tag", tag, from)
				// The longest value an alias carries: a subnet.
				if alias := tag + " 255.255.255.255/32"; len(alias) > 255 {
					t.Errorf("alias %q is %d bytes, more than IFALIASZ-1", alias, len(alias))
				}
				if ud := tagData(tag); len(ud) > 256 {
					t.Errorf("rule comment of %q is %d bytes, more than NFT_USERDATA_MAXLEN", tag, len(ud))
				}
				gotP, _, gotN, _, ok := parseTag(tag + " 10.0.0.2")
				if !ok || gotP != p || gotN != n {
					t.Errorf("parseTag(%q) = %q, %q, %v", tag, gotP, gotN, ok)
				}
				for _, q := range projects {
					if ownedBy(tag, q) != (q == p) {
						t.Errorf("ownedBy(%q, %q) = %v", tag, q, !(q == p))
					}
				}
			}
		}
	}
	for _, bad := range []string{strings.Repeat("p", MaxProjectLen+1), "a b", "a/b", "..", "a\nb", "a\x1bb", "a\x7fb", ""} {
		if err := checkName("project", bad); err == nil {
			t.Errorf("checkName(%q) accepted it", bad)
		}
	}
	if err := checkName("sandbox", strings.Repeat("s", MaxNameLen+1)); err == nil {
		t.Error("checkName accepted a sandbox name over MaxNameLen")
	}
}

// projectPair returns two project names as sbx makes them for two
// directories with the same name: the name, a dash and a hash of the
// directory. They are unique to the test, and checked at the end of the
// test for leftovers like project's.
func projectPair(t *testing.T, name string) (string, string) {
	t.Helper()
	requireRoot(t)
	h := hex.EncodeToString(hash(t.Name()))
	a, b := name+"-"+h[:8], name+"-"+h[8:16]
	for _, p := range []string{a, b} {
		t.Cleanup(func() {
			res, err := List(context.Background(), p)
			if err != nil || !res.Empty() {
				t.Errorf("project %s left (%v):\n%s", p, err, res)
				_ = TeardownProject(context.Background(), p)
			}
		})
	}
	return a, b
}

// TestSameNameOtherDirectory runs two projects that share their name (of the
// longest length sbx passes) and the names of their sandboxes and networks,
// and checks that they share nothing: links, namespaces, rules, and that
// tearing one down leaves the other working.
func TestSameNameOtherDirectory(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"app", strings.Repeat("a", 64)} {
		t.Run(fmt.Sprint(len(name)), func(t *testing.T) {
			p1, p2 := projectPair(t, name)
			s1, s2 := subnet(t, "one"), subnet(t, "two")
			if s1 == s2 {
				t.Fatal("same subnet picked twice")
			}
			hs := map[string][]*Handle{}
			for _, x := range []struct {
				p  string
				sn netip.Prefix
			}{{p1, s1}, {p2, s2}} {
				hs[x.p] = []*Handle{
					mustSetup(t, Net{Project: x.p, Name: "web", Scope: ScopePublic}),
					mustSetup(t, Net{Project: x.p, Name: "db", Scope: ScopeGroup, Group: "backend", Subnet: x.sn, IP: host(x.sn, 2)}),
				}
			}
			r1, err := List(ctx, p1)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := List(ctx, p2)
			if err != nil {
				t.Fatal(err)
			}
			if len(r1.Links) != 4 || len(r1.NetNS) != 2 || len(r2.Links) != 4 || len(r2.NetNS) != 2 {
				t.Errorf("List:\n%s\n%s", r1, r2)
			}
			owned := map[string]string{}
			for p, r := range map[string]Resources{p1: r1, p2: r2} {
				var all []string
				for _, l := range r.Links {
					all = append(all, "link "+l.Name)
				}
				for _, n := range r.NetNS {
					all = append(all, "netns "+n)
				}
				for _, c := range r.Chains {
					all = append(all, "chain "+c)
				}
				for _, x := range r.Rules {
					all = append(all, fmt.Sprintf("rule %d", x.Handle))
					if !ownedBy(x.Tag, p) {
						t.Errorf("List(%s) has a rule of another project: %q", p, x.Tag)
					}
				}
				for _, x := range all {
					if other, ok := owned[x]; ok {
						t.Errorf("%s belongs to both %s and %s", x, other, p)
					}
					owned[x] = p
				}
			}
			// Each reaches its own sandboxes from the host; tearing p1 down leaves p2 whole.
			serve := func(h *Handle) string {
				return net.JoinHostPort(h.IP().String(), fmt.Sprint(listenIn(t, h.NetNSPath(), "0.0.0.0:0").Port))
			}
			web2, db2 := serve(hs[p2][0]), serve(hs[p2][1])
			if err := TeardownProject(ctx, p1); err != nil {
				t.Fatal(err)
			}
			mustReach(t, "", web2)
			mustReach(t, "", db2)
			if r, err := List(ctx, p2); err != nil || len(r.Links) != 4 || len(r.NetNS) != 2 || len(r.Rules) != len(r2.Rules) {
				t.Errorf("p2 after p1's teardown (%v):\n%s", err, r)
			}
			if _, err := netlink.LinkByName(BridgeName(p2, DefaultNetwork)); err != nil {
				t.Errorf("bridge of p2's default network: %v", err)
			}
		})
	}
}

// TestTeardownOldNames: names an earlier sbx accepted (up to 128 bytes, any
// printable byte but '/') can still be torn down and listed.
func TestTeardownOldNames(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	old := strings.Repeat("o", 120) + hex.EncodeToString(hash(t.Name()))[:8]
	if err := checkName("project", old); err == nil {
		t.Fatalf("%d bytes is a valid project name now; the test needs an old one", len(old))
	}
	if err := Teardown(ctx, old, "web"); err != nil {
		t.Errorf("Teardown(%s): %v", old, err)
	}
	if err := TeardownProject(ctx, old); err != nil {
		t.Errorf("TeardownProject(%s): %v", old, err)
	}
	if res, err := List(ctx, old); err != nil || !res.Empty() {
		t.Errorf("List(%s): %v\n%s", old, err, res)
	}
	for _, bad := range []string{"a/b", "..", "", "a\x00b"} {
		if err := Teardown(ctx, bad, "web"); err == nil {
			t.Errorf("Teardown(%q) accepted it", bad)
		}
	}
}
