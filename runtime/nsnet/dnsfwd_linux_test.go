//go:build linux

package nsnet

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var probeAddr = netip.MustParseAddr("192.0.2.53") // TEST-NET-1

// fakeDNS serves, on UDP and TCP at one port of 127.0.0.1, an A record for
// probe.sbx.test (probeAddr) and NXDOMAIN for other names; it never answers
// silent.sbx.test. It counts the queries it gets. Nothing in the tests
// sends DNS anywhere else.
func fakeDNS(t *testing.T) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	var ln net.Listener
	var pc net.PacketConn
	for range 20 {
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp4", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
		ln = nil
	}
	if ln == nil {
		t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	answer := func(q []byte) []byte {
		n.Add(1)
		name, qtype, end, err := question(q)
		if err != nil || name == "silent.sbx.test" {
			return nil
		}
		a := append([]byte(nil), q[:end]...)
		a[2] = 0x84 | q[2]&0x01 // QR, AA, RD
		a[3] = 0x80             // RA
		binary.BigEndian.PutUint32(a[6:], 0)
		binary.BigEndian.PutUint16(a[10:], 0)
		if name != "probe.sbx.test" || qtype != 1 {
			a[3] |= 3 // NXDOMAIN
			return a
		}
		binary.BigEndian.PutUint16(a[6:], 1)
		ip := probeAddr.As4()
		a = append(a, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		return append(a, ip[:]...)
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:k]); a != nil {
				pc.WriteTo(a, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					q, err := readDNS(c)
					if err != nil {
						return
					}
					if a := answer(q); a != nil {
						if writeDNS(c, a) != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), &n
}

var queryID atomic.Uint32

// lookup asks server for the A record of name from inside a namespace, over
// network "udp" or "tcp", and returns the rcode and address.
func lookup(nsPath, network string, server netip.AddrPort, name string) (int, netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := DialNetNS(ctx, nsPath, network, server.String())
	if err != nil {
		return 0, netip.Addr{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	q := dnsQuery(uint16(queryID.Add(1)), name)
	var a []byte
	if network == "tcp" {
		if err := writeDNS(c, q); err != nil {
			return 0, netip.Addr{}, err
		}
		a, err = readDNS(c)
	} else {
		if _, err := c.Write(q); err != nil {
			return 0, netip.Addr{}, err
		}
		buf := make([]byte, 65535)
		var k int
		k, err = c.Read(buf)
		a = buf[:k]
	}
	if err != nil {
		return 0, netip.Addr{}, err
	}
	return answerA(q, a)
}

func mustResolve(t *testing.T, nsPath string, server netip.AddrPort) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		rcode, addr, err := lookup(nsPath, network, server, "probe.sbx.test")
		if err != nil || rcode != 0 || addr != probeAddr {
			t.Errorf("%s over %s: rcode %d, %s, %v; want %s", server, network, rcode, addr, err, probeAddr)
		}
	}
}

// listening reports whether something holds addr for UDP or TCP, by trying
// to bind it without SO_REUSEPORT.
func listening(addr netip.AddrPort) bool {
	ln, err := net.Listen("tcp4", addr.String())
	if err != nil {
		return true
	}
	ln.Close()
	pc, err := net.ListenPacket("udp4", addr.String())
	if err != nil {
		return true
	}
	pc.Close()
	return false
}

func TestDNSForwarder(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	pub := mustSetup(t, Net{Project: p, Name: "pub", Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, 2)})
	pub2 := mustSetup(t, Net{Project: p, Name: "pub2", Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, 3)})
	grp := mustSetup(t, Net{Project: p, Name: "grp", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 4)})
	anyS := mustSetup(t, Net{Project: p, Name: "any", Scope: ScopeAny})
	up, queries := fakeDNS(t)
	gw := netip.AddrPortFrom(pub.Gateway(), 53)
	if listening(gw) {
		t.Fatalf("%s is taken before the forwarder starts", gw)
	}

	serve := func(h *Handle, ups ...netip.AddrPort) *DNSForwarder {
		t.Helper()
		f, err := ServeDNS(ctx, h, ups, WithDNSTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f := serve(pub, up)
	if f.Addr() != gw {
		t.Errorf("Addr = %s, want %s", f.Addr(), gw)
	}
	if got, want := ResolvConf(ScopePublic, pub), "nameserver "+pub.Gateway().String()+"\n"; got != want {
		t.Errorf("ResolvConf = %q, want %q", got, want)
	}
	mustResolve(t, pub.NetNSPath(), gw)
	if rcode, _, err := lookup(pub.NetNSPath(), "udp", gw, "other.sbx.test"); err != nil || rcode != 3 {
		t.Errorf("other.sbx.test: rcode %d, %v; want NXDOMAIN", rcode, err)
	}
	// An upstream that stays silent: SERVFAIL after the timeout.
	if rcode, _, err := lookup(pub.NetNSPath(), "udp", gw, "silent.sbx.test"); err != nil || rcode != 2 {
		t.Errorf("silent.sbx.test: rcode %d, %v; want SERVFAIL", rcode, err)
	}

	t.Run("group gets no DNS", func(t *testing.T) {
		before := queries.Load()
		for _, network := range []string{"udp", "tcp"} {
			if rcode, addr, err := lookup(grp.NetNSPath(), network, gw, "probe.sbx.test"); err == nil {
				t.Errorf("group sandbox resolved over %s: rcode %d, %s", network, rcode, addr)
			} else {
				t.Logf("group sandbox over %s: %v", network, err)
			}
		}
		if n := queries.Load() - before; n != 0 {
			t.Errorf("the upstream got %d queries from the group sandbox", n)
		}
	})

	t.Run("any, failing over", func(t *testing.T) {
		// A closed port on loopback: refused at once, the next one answers.
		ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := netip.MustParseAddrPort(ln.LocalAddr().String())
		ln.Close()
		fa := serve(anyS, dead, up)
		mustResolve(t, anyS.NetNSPath(), fa.Addr())
	})

	t.Run("sandboxes sharing a gateway", func(t *testing.T) {
		f2 := serve(pub2, up) // binds the same address: SO_REUSEPORT
		for range 4 {
			mustResolve(t, pub.NetNSPath(), gw)
			mustResolve(t, pub2.NetNSPath(), gw)
		}
		// The first one stops; the second still answers both.
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			mustResolve(t, pub.NetNSPath(), gw)
			mustResolve(t, pub2.NetNSPath(), gw)
		}
		f2.Close()
		if listening(gw) {
			t.Errorf("%s still bound after Close", gw)
		}
		if _, _, err := lookup(pub.NetNSPath(), "tcp", gw, "probe.sbx.test"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("TCP query after Close: %v, want connection refused", err)
		}
	})

	t.Run("ctx ends it", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		f3, err := ServeDNS(cctx, pub, []netip.AddrPort{up})
		if err != nil {
			t.Fatal(err)
		}
		mustResolve(t, pub.NetNSPath(), gw)
		cancel()
		deadline := time.Now().Add(3 * time.Second)
		for listening(gw) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still bound after the context ended", gw)
			}
			time.Sleep(20 * time.Millisecond)
		}
		f3.Close()
	})

	t.Run("Teardown removes the rules", func(t *testing.T) {
		if err := Teardown(ctx, p, "pub"); err != nil {
			t.Fatal(err)
		}
		fw, err := newFirewall()
		if err != nil {
			t.Fatal(err)
		}
		rs, err := fw.rules()
		if err != nil {
			t.Fatal(err)
		}
		dns, inChainLeft := 0, false
		for _, r := range rs {
			if r.tag == sandboxTag(p, "pub") {
				t.Errorf("rule of pub left in %s", r.rule.Chain.Name)
			}
			if r.rule.Chain.Name == inChain(BridgeName(p, "g")) {
				inChainLeft = true
				if r.tag == sandboxTag(p, "pub2") {
					dns++
				}
			}
		}
		if !inChainLeft || dns != 2 {
			t.Errorf("in-chain of the network: present %v, %d DNS rules of pub2 (want 2)", inChainLeft, dns)
		}
	})
}
