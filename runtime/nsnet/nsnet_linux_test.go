//go:build linux

package nsnet

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The tests only send traffic to loopback or to addresses inside network
// namespaces they create themselves; testHost checks the host's routes
// before anything is sent to the "outside" addresses it provides.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, links and nftables")
	}
}

// project returns a project name unique to the test, and checks at the end
// of the test that it left nothing behind.
func project(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	p := "t" + hex.EncodeToString(hash(t.Name()))[:8]
	t.Cleanup(func() {
		if t.Failed() {
			_ = TeardownProject(context.Background(), p)
		}
		res, err := List(context.Background(), p)
		if err != nil {
			t.Errorf("List(%s): %v", p, err)
		} else if !res.Empty() {
			t.Errorf("project %s left:\n%s", p, res)
			_ = TeardownProject(context.Background(), p)
		}
		if _, err := os.Stat(filepath.Join(nsDir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", filepath.Join(nsDir, p), err)
		}
	})
	return p
}

// subnet returns a /24 in 10.201.0.0/16 that no host route overlaps.
func subnet(t *testing.T, seed string) netip.Prefix {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	start := int(hash(t.Name(), seed)[0])
	for i := range 256 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 201, byte(start + i), 0}), 24)
		if overlapping(p, routes) == "" {
			return p
		}
	}
	t.Fatal("no free subnet in 10.201.0.0/16")
	return netip.Prefix{}
}

func host(p netip.Prefix, n int) netip.Addr {
	a := p.Addr().As4()
	a[3] += byte(n)
	return netip.AddrFrom4(a)
}

func mustSetup(t *testing.T, n Net) *Handle {
	t.Helper()
	h, err := Setup(context.Background(), n)
	if err != nil {
		t.Fatalf("Setup(%+v): %v", n, err)
	}
	t.Cleanup(func() {
		if err := Teardown(context.Background(), n.Project, n.Name); err != nil {
			t.Errorf("Teardown %s: %v", n.Name, err)
		}
	})
	return h
}

// echo serves an echo server on ln until the test ends.
func echo(t *testing.T, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

// listenIn starts a TCP echo server inside a namespace ("" = the host's).
func listenIn(t *testing.T, nsPath, addr string) *net.TCPAddr {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) { ln, err = net.Listen("tcp", addr); return err }
	var err error
	if nsPath == "" {
		err = listen()
	} else {
		err = Within(nsPath, listen)
	}
	if err != nil {
		t.Fatalf("listen on %s in %q: %v", addr, nsPath, err)
	}
	echo(t, ln)
	return ln.Addr().(*net.TCPAddr)
}

// udpEchoIn starts a UDP echo server inside a namespace.
func udpEchoIn(t *testing.T, nsPath, addr string) *net.UDPAddr {
	t.Helper()
	var pc net.PacketConn
	if err := Within(nsPath, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr)
}

// roundTrip checks that a connection echoes.
func roundTrip(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo returned %q", line)
	}
	return nil
}

// reach dials addr from inside a namespace ("" = the host) and checks the echo.
func reach(nsPath, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var c net.Conn
	var err error
	if nsPath == "" {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		c, err = DialNetNS(ctx, nsPath, "tcp", addr)
	}
	if err != nil {
		return err
	}
	return roundTrip(c)
}

func mustReach(t *testing.T, from, addr string) {
	t.Helper()
	if err := reach(from, addr); err != nil {
		t.Errorf("%s -> %s: %v, want a connection", filepath.Base(from), addr, err)
	}
}

func mustNotReach(t *testing.T, from, addr string) {
	t.Helper()
	err := reach(from, addr)
	if err == nil {
		t.Errorf("%s -> %s: connected, want it blocked", filepath.Base(from), addr)
	}
	t.Logf("%s -> %s blocked: %v", filepath.Base(from), addr, err)
}

func linksIn(t *testing.T, nsPath string) []string {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// addDefaultRoute plays a payload that adds a default route through its
// gateway to get around a missing one.
func addDefaultRoute(t *testing.T, h *Handle) {
	t.Helper()
	ns, err := netns.GetFromPath(h.NetNSPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: h.Gateway().AsSlice()}); err != nil {
		t.Fatal(err)
	}
}

func TestGroupMembersReachEachOther(t *testing.T) {
	p := project(t)
	sn := subnet(t, "g")
	a := mustSetup(t, Net{Project: p, Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 10)})
	b := mustSetup(t, Net{Project: p, Name: "b", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 11)})
	pub := mustSetup(t, Net{Project: p, Name: "pub", Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, 12)})

	la := listenIn(t, a.NetNSPath(), "0.0.0.0:0")
	lpub := listenIn(t, pub.NetNSPath(), "0.0.0.0:0")
	mustReach(t, b.NetNSPath(), net.JoinHostPort(a.IP().String(), fmt.Sprint(la.Port)))
	mustReach(t, a.NetNSPath(), net.JoinHostPort(pub.IP().String(), fmt.Sprint(lpub.Port)))
	mustReach(t, pub.NetNSPath(), net.JoinHostPort(a.IP().String(), fmt.Sprint(la.Port)))
	// The host reaches them (what the port proxy does).
	mustReach(t, "", net.JoinHostPort(a.IP().String(), fmt.Sprint(la.Port)))

	if got := linksIn(t, a.NetNSPath()); strings.Join(got, ",") != "lo,eth0" {
		t.Errorf("links in a: %v, want lo and eth0", got)
	}
	br, err := netlink.LinkByName(BridgeName(p, "g"))
	if err != nil {
		t.Fatal(err)
	}
	if br.Type() != "bridge" {
		t.Errorf("%s is a %s", br.Attrs().Name, br.Type())
	}
	res, err := List(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 4 || len(res.NetNS) != 3 || len(res.Chains) != 3 {
		t.Errorf("List:\n%s", res)
	}
}

func TestNoneHasOnlyLoopback(t *testing.T) {
	p := project(t)
	sn := subnet(t, "g")
	none := mustSetup(t, Net{Project: p, Name: "none", Scope: ScopeNone})
	g := mustSetup(t, Net{Project: p, Name: "g", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2)})
	if none.IP().IsValid() {
		t.Errorf("scope none got address %s", none.IP())
	}
	if got := linksIn(t, none.NetNSPath()); strings.Join(got, ",") != "lo" {
		t.Errorf("links in a none sandbox: %v, want only lo", got)
	}
	lg := listenIn(t, g.NetNSPath(), "0.0.0.0:0")
	mustNotReach(t, none.NetNSPath(), net.JoinHostPort(g.IP().String(), fmt.Sprint(lg.Port)))
	// Loopback works inside.
	ll := listenIn(t, none.NetNSPath(), "127.0.0.1:0")
	mustReach(t, none.NetNSPath(), ll.String())
	// and is not the host's loopback.
	hostLn := listenIn(t, "", "127.0.0.1:0")
	mustNotReach(t, none.NetNSPath(), hostLn.String())
}

func TestGroupsAreIsolated(t *testing.T) {
	p := project(t)
	s1, s2 := subnet(t, "one"), subnet(t, "two")
	if s1 == s2 {
		t.Skip("same subnet picked twice")
	}
	a := mustSetup(t, Net{Project: p, Name: "a", Scope: ScopeGroup, Group: "one", Subnet: s1, IP: host(s1, 2)})
	b := mustSetup(t, Net{Project: p, Name: "b", Scope: ScopeGroup, Group: "two", Subnet: s2, IP: host(s2, 2)})
	x := mustSetup(t, Net{Project: p, Name: "x", Scope: ScopeAny, Group: "two", Subnet: s2, IP: host(s2, 3)})
	lb := listenIn(t, b.NetNSPath(), "0.0.0.0:0")
	target := net.JoinHostPort(b.IP().String(), fmt.Sprint(lb.Port))
	mustNotReach(t, a.NetNSPath(), target) // no route
	// A payload that adds a route still hits the firewall.
	addDefaultRoute(t, a)
	mustNotReach(t, a.NetNSPath(), target)
	// Nor does it reach the host through its gateway.
	hostLn := listenIn(t, "", net.JoinHostPort(a.Gateway().String(), "0"))
	mustNotReach(t, a.NetNSPath(), hostLn.String())
	mustReach(t, "", hostLn.String())
	// A sandbox with scope any (in another network) is not let into group one either.
	la := listenIn(t, a.NetNSPath(), "0.0.0.0:0")
	mustNotReach(t, x.NetNSPath(), net.JoinHostPort(a.IP().String(), fmt.Sprint(la.Port)))
	// A sandbox that spoofs the address of x (scope any) gets nothing more.
	spoof(t, b, x.IP())
	hostB := listenIn(t, "", net.JoinHostPort(b.Gateway().String(), "0"))
	mustReach(t, x.NetNSPath(), hostB.String()) // any reaches the host
	if err := reachFrom(b.NetNSPath(), x.IP(), hostB.String()); err == nil {
		t.Errorf("b spoofing %s reached the host", x.IP())
	}
}

// spoof adds addr to the sandbox's eth0 and a default route, as a payload
// with CAP_NET_ADMIN could.
func spoof(t *testing.T, h *Handle, addr netip.Addr) {
	t.Helper()
	addDefaultRoute(t, h)
	ns, err := netns.GetFromPath(h.NetNSPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := nh.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
}

// reachFrom dials addr from a namespace with source address src.
func reachFrom(nsPath string, src netip.Addr, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var c net.Conn
	err := Within(nsPath, func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return err
	}
	return roundTrip(c)
}

// publicStandIn is the address the tests use for a host on the internet:
// 192.88.99.0/24 was the 6to4 relay anycast prefix, deprecated since 2015
// (RFC 7526), and is in none of the ranges the public scope blocks.
const publicStandIn = "192.88.99.2"

// outside is a stand-in for machines outside the host: a network namespace
// reached from the host through a veth, holding 192.168.77.2 (the veth's
// subnet, a private address) and more addresses, with a TCP echo server on
// one port of all of them.
//
// The host routes the extra addresses into the namespace only for packets
// of the sandboxes given to admit (a policy routing rule on their source
// address and bridge, and a routing table of the test's own), so nothing
// else on the host is diverted, and a test sends nothing to a real network
// that uses those ranges (this machine's LAN is in 192.0.2.0/24).
type outside struct {
	t     *testing.T
	port  string
	table int
	veth  netlink.Link
	addrs []string
}

// testHost builds the outside with addrs.
func testHost(t *testing.T, addrs ...string) *outside {
	t.Helper()
	hostNet := netip.MustParsePrefix("192.168.77.0/24")
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if r := overlapping(hostNet, routes); r != "" {
		t.Skipf("192.168.77.0/24 is in use on this host (%s)", r)
	}
	nsPath := filepath.Join(t.TempDir(), "outside")
	if err := createNetNS(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(nsPath) })
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h := hash(t.Name())
	vname := "nsnt" + hex.EncodeToString(h)[:8]
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vname}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		t.Fatal(err)
	}
	veth, err := netlink.LinkByName(vname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(veth) })
	ipnet := func(a string, bits int) *netlink.Addr {
		return &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(a), Mask: net.CIDRMask(bits, 32)}}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netlink.AddrAdd(veth, ipnet("192.168.77.1", 24)))
	must(netlink.LinkSetUp(veth))
	nh, err := netlink.NewHandleAt(ns)
	must(err)
	defer nh.Close()
	eth0, err := nh.LinkByName("eth0")
	must(err)
	must(nh.AddrAdd(eth0, ipnet("192.168.77.2", 24)))
	for _, a := range addrs {
		must(nh.AddrAdd(eth0, ipnet(a, 32)))
	}
	must(nh.LinkSetUp(eth0))
	lo, err := nh.LinkByName("lo")
	must(err)
	must(nh.LinkSetUp(lo))
	must(nh.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("192.168.77.1")}))
	o := &outside{t: t, table: 20000 + int(h[0])<<8 | int(h[1]), veth: veth, addrs: addrs}
	for _, a := range addrs {
		must(netlink.RouteAdd(&netlink.Route{Table: o.table, LinkIndex: veth.Attrs().Index,
			Dst: &net.IPNet{IP: net.ParseIP(a), Mask: net.CIDRMask(32, 32)}, Gw: net.ParseIP("192.168.77.2")}))
	}
	rs, err := netlink.RouteGet(net.ParseIP("192.168.77.2"))
	if err != nil || len(rs) == 0 || rs[0].LinkIndex != veth.Attrs().Index {
		t.Fatalf("the host does not route 192.168.77.2 into the test namespace (%v, %v): not sending anything", rs, err)
	}
	o.port = fmt.Sprint(listenIn(t, nsPath, "0.0.0.0:0").Port)
	return o
}

// at is the echo server's address at a (an address of the outside).
func (o *outside) at(a string) string { return net.JoinHostPort(a, o.port) }

// admit routes what the sandbox of h sends to the outside's addresses into
// the outside, and checks that the host does.
func (o *outside) admit(h *Handle) {
	t := o.t
	t.Helper()
	br := BridgeName(h.Net().Project, h.Net().network())
	r := netlink.NewRule()
	r.Src = &net.IPNet{IP: h.IP().AsSlice(), Mask: net.CIDRMask(32, 32)}
	r.IifName = br
	r.Table = o.table
	r.Priority = 100
	if err := netlink.RuleAdd(r); err != nil {
		t.Fatalf("ip rule add from %s iif %s lookup %d: %v", h.IP(), br, o.table, err)
	}
	t.Cleanup(func() { netlink.RuleDel(r) })
	for _, a := range o.addrs {
		rs, err := netlink.RouteGetWithOptions(net.ParseIP(a), &netlink.RouteGetOptions{Iif: br, SrcAddr: h.IP().AsSlice()})
		if err != nil || len(rs) == 0 || rs[0].LinkIndex != o.veth.Attrs().Index {
			t.Fatalf("the host does not route %s from %s into the test namespace (%v, %v): not sending anything", a, h.IP(), rs, err)
		}
	}
}

// TestPublicBlocksSpecialRanges sends to a host in a namespace that holds an
// address in each range the public scope blocks beyond the private ones:
// refused for public, reached for any.
func TestPublicBlocksSpecialRanges(t *testing.T) {
	p := project(t)
	blocked := []string{
		"192.0.0.77",     // IETF protocol assignments
		"192.0.2.77",     // TEST-NET-1
		"198.51.100.77",  // TEST-NET-2
		"203.0.113.77",   // TEST-NET-3
		"198.18.0.1",     // benchmarking, lower /16
		"198.19.255.77",  // benchmarking, upper /16
		"100.127.255.77", // shared address space (CGNAT), top
		"240.0.0.77",     // reserved
	}
	out := testHost(t, append(blocked, publicStandIn)...)
	pub := mustSetup(t, Net{Project: p, Name: "pub", Scope: ScopePublic})
	anyS := mustSetup(t, Net{Project: p, Name: "any", Scope: ScopeAny})
	out.admit(pub)
	out.admit(anyS)
	for _, a := range blocked {
		if !isBlocked(netip.MustParseAddr(a)) {
			t.Errorf("isBlocked(%s) = false", a)
		}
		mustReach(t, anyS.NetNSPath(), out.at(a))
		mustNotReach(t, pub.NetNSPath(), out.at(a))
	}
	// Not everything: the stand-in for the internet is reached.
	mustReach(t, pub.NetNSPath(), out.at(publicStandIn))
}

func TestPublicAndAny(t *testing.T) {
	p := project(t)
	if before, err := os.ReadFile(ipForward); err == nil && strings.TrimSpace(string(before)) == "0" {
		t.Cleanup(func() {
			if all, err := List(context.Background(), ""); err != nil || !all.Empty() {
				return // other sandboxes may still need it
			}
			if b, _ := os.ReadFile(ipForward); strings.TrimSpace(string(b)) != "0" {
				t.Errorf("ip_forward is %q after the last NAT sandbox, was 0", b)
			}
		})
	}
	out := testHost(t, publicStandIn)
	private, public := out.at("192.168.77.2"), out.at(publicStandIn)
	pub := mustSetup(t, Net{Project: p, Name: "pub", Scope: ScopePublic})
	anyS := mustSetup(t, Net{Project: p, Name: "any", Scope: ScopeAny})
	out.admit(pub)
	out.admit(anyS)
	if !pub.Subnet().IsValid() || pub.Subnet() != anyS.Subnet() || !netip.MustParsePrefix(defaultPool).Contains(pub.Subnet().Addr()) {
		t.Errorf("default network: %s and %s", pub.Subnet(), anyS.Subnet())
	}
	if b, _ := os.ReadFile(ipForward); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward is %q with NAT sandboxes", b)
	}

	mustReach(t, anyS.NetNSPath(), private) // proves the test host is reachable
	mustNotReach(t, pub.NetNSPath(), private)
	mustReach(t, pub.NetNSPath(), public)
	mustReach(t, anyS.NetNSPath(), public)

	// The host: any yes, public no.
	hostLn := listenIn(t, "", net.JoinHostPort(pub.Gateway().String(), "0"))
	mustReach(t, anyS.NetNSPath(), hostLn.String())
	mustNotReach(t, pub.NetNSPath(), hostLn.String())

	// Sandboxes of the default network are not a group.
	la := listenIn(t, anyS.NetNSPath(), "0.0.0.0:0")
	mustNotReach(t, pub.NetNSPath(), net.JoinHostPort(anyS.IP().String(), fmt.Sprint(la.Port)))

	// A public sandbox in a group reaches its group and the outside, not private hosts.
	sn := subnet(t, "g")
	g := mustSetup(t, Net{Project: p, Name: "g", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2)})
	gp := mustSetup(t, Net{Project: p, Name: "gp", Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, 3)})
	out.admit(gp)
	lg := listenIn(t, g.NetNSPath(), "0.0.0.0:0")
	mustReach(t, gp.NetNSPath(), net.JoinHostPort(g.IP().String(), fmt.Sprint(lg.Port)))
	mustReach(t, gp.NetNSPath(), public)
	mustNotReach(t, gp.NetNSPath(), private)
	// and a group-only member reaches neither.
	addDefaultRoute(t, g)
	out.admit(g)
	mustNotReach(t, g.NetNSPath(), public)
	mustNotReach(t, g.NetNSPath(), private)
}

func TestProxy(t *testing.T) {
	p := project(t)
	sn := subnet(t, "g")
	g := mustSetup(t, Net{Project: p, Name: "g", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2)})
	none := mustSetup(t, Net{Project: p, Name: "none", Scope: ScopeNone})

	serve := func(network string, dial DialFunc) *Proxy {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		px, err := ListenProxy(ctx, network, "127.0.0.1:0", dial, WithIdleTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- px.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		return px
	}

	cases := []struct {
		name   string
		h      *Handle
		listen string
	}{
		{"group, all addresses", g, "0.0.0.0:0"},
		{"group, loopback only", g, "127.0.0.1:0"},
		{"none", none, "127.0.0.1:0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := listenIn(t, c.h.NetNSPath(), c.listen)
			addr := serve("tcp", c.h.Dialer("tcp", l.Port)).Addr().String()
			for range 3 {
				mustReach(t, "", addr)
			}
		})
	}
	for _, c := range []struct {
		name string
		h    *Handle
	}{{"udp group", g}, {"udp none", none}} {
		t.Run(c.name, func(t *testing.T) {
			listen := "0.0.0.0:0"
			if !c.h.IP().IsValid() {
				listen = "127.0.0.1:0"
			}
			u := udpEchoIn(t, c.h.NetNSPath(), listen)
			px := serve("udp", c.h.Dialer("udp", u.Port))
			conn, err := net.Dial("udp", px.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i := range 3 {
				msg := fmt.Sprintf("datagram %d", i)
				conn.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := conn.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 100)
				n, err := conn.Read(buf)
				if err != nil || string(buf[:n]) != msg {
					t.Fatalf("udp echo: %q, %v", buf[:n], err)
				}
			}
			// The session ends after the idle timeout (1s here).
			deadline := time.Now().Add(5 * time.Second)
			for {
				px.mu.Lock()
				n := len(px.conns)
				px.mu.Unlock()
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d UDP sessions still open after the idle timeout", n)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = ListenProxy(context.Background(), "tcp", ln.Addr().String(), g.Dialer("tcp", 1))
		var pe *PortInUseError
		if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("err = %v, want a PortInUseError", err)
		}
		if pe.PID != os.Getpid() || !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Errorf("err = %v (pid %d), want it to name %s and pid %d", err, pe.PID, ln.Addr(), os.Getpid())
		}
	})
}

func TestTeardown(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	n := func(name string, ip int) Net {
		return Net{Project: p, Name: name, Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, ip)}
	}
	// A Setup that died right after creating the bridge (no alias yet).
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName(p, "g")}}); err != nil {
		t.Fatal(err)
	}
	// A supervisor that was killed: its handle is gone.
	if _, err := Setup(ctx, n("a", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(ctx, n("b", 3)); err != nil {
		t.Fatal(err)
	}
	// Setting up again over the leftovers works.
	if _, err := Setup(ctx, n("a", 2)); err != nil {
		t.Fatalf("Setup over leftovers: %v", err)
	}
	if err := Teardown(ctx, p, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(BridgeName(p, "g")); err != nil {
		t.Errorf("bridge gone while b still uses it: %v", err)
	}
	if _, err := netlink.LinkByName(VethName(p, "a")); err == nil {
		t.Errorf("veth of a left")
	}
	if err := Teardown(ctx, p, "b"); err != nil {
		t.Fatal(err)
	}
	if err := Teardown(ctx, p, "b"); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	for _, name := range []string{BridgeName(p, "g"), VethName(p, "a"), VethName(p, "b")} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s left", name)
		}
	}
	for _, name := range []string{"a", "b"} {
		if _, err := os.Stat(NetNSPath(p, name)); err == nil {
			t.Errorf("netns of %s left", name)
		}
	}
	checkNoChains(t, p)
}

// checkNoChains looks for the project's rules and chains through nftables directly.
func checkNoChains(t *testing.T, p string) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name == tableName && strings.HasSuffix(ch.Name, BridgeName(p, "g")) {
			t.Errorf("chain %s left", ch.Name)
		}
	}
	if all, err := List(context.Background(), ""); err == nil && all.Empty() {
		// Nothing of any project is left: neither are sbx's tables.
		tables, err := c.ListTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if tb.Name == tableName {
				t.Errorf("table %s left with no project using it", tb.Name)
			}
		}
	}
	fw, err := newFirewall()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := fw.rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if ownedBy(r.tag, p) {
			t.Errorf("rule %q left in %s", r.tag, r.rule.Chain.Name)
		}
	}
}

func TestTeardownProject(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	for i, name := range []string{"a", "b"} {
		if _, err := Setup(ctx, Net{Project: p, Name: name, Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2+i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Setup(ctx, Net{Project: p, Name: "c", Scope: ScopeAny}); err != nil {
		t.Fatal(err)
	}
	if err := TeardownProject(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentSetup(t *testing.T) {
	p := project(t)
	sn := subnet(t, "g")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%d", i)
			t.Cleanup(func() { Teardown(context.Background(), p, name) })
			_, errs[i] = Setup(context.Background(), Net{Project: p, Name: name, Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2+i)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	br, err := netlink.LinkByName(BridgeName(p, "g"))
	if err != nil {
		t.Fatal(err)
	}
	links, _ := netlink.LinkList()
	ports := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports++
		}
	}
	if ports != len(errs) {
		t.Errorf("%d ports on the bridge, want %d", ports, len(errs))
	}
}

func TestSetupErrors(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	if _, err := Setup(ctx, Net{Project: p, Name: "a", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2)}); err != nil {
		t.Fatal(err)
	}
	defer Teardown(ctx, p, "a")
	// Same address twice.
	_, err := Setup(ctx, Net{Project: p, Name: "b", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 2)})
	if err == nil || !strings.Contains(err.Error(), "already the address of sandbox a") {
		t.Errorf("duplicate address: %v", err)
	}
	// The running network's subnet cannot change under it.
	other := subnet(t, "other")
	_, err = Setup(ctx, Net{Project: p, Name: "b", Scope: ScopeGroup, Group: "g", Subnet: other, IP: host(other, 3)})
	if err == nil || !strings.Contains(err.Error(), "runs with subnet") {
		t.Errorf("changed subnet: %v", err)
	}
	// A subnet the host routes elsewhere (here: the group's, from another project).
	_, err = Setup(ctx, Net{Project: p + "x", Name: "b", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 3)})
	if err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlapping subnet: %v", err)
	}
	if res, _ := List(ctx, p+"x"); !res.Empty() {
		t.Errorf("failed Setup left:\n%s", res)
	}
	// b failed both times: nothing of it is left.
	if _, err := os.Stat(NetNSPath(p, "b")); err == nil {
		t.Error("netns of b left after failed Setup")
	}
}

func BenchmarkSetupTeardown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	p := "bench" + hex.EncodeToString(hash(b.Name()))[:6]
	for _, scope := range []string{ScopeNone, ScopePublic} {
		b.Run(scope, func(b *testing.B) {
			for b.Loop() {
				if _, err := Setup(ctx, Net{Project: p, Name: "s", Scope: scope}); err != nil {
					b.Fatal(err)
				}
				if err := Teardown(ctx, p, "s"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
