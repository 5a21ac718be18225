//go:build linux

package nsnet

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostNeigh returns the MAC the host's neighbour cache holds for ip on the
// bridge br, or nil.
func hostNeigh(t *testing.T, br string, ip net.IP) net.HardwareAddr {
	t.Helper()
	l, err := netlink.LinkByName(br)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netlink.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.IP.Equal(ip) && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

// captureARP opens a packet socket for the ARP frames that reach bridge br.
func captureARP(t *testing.T, br string) int {
	t.Helper()
	l, err := netlink.LinkByName(br)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// sawGARP reads ARP frames from fd until one announces ip (sender and target
// address both ip, sender MAC MACFor(ip)) or a read times out.
func sawGARP(fd int, ip netip.Addr) bool {
	want := garp(MACFor(ip), ip)
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return false
		}
		if n >= len(want) && bytes.Equal(buf[:len(want)], want) {
			return true
		}
	}
}

// guestMAC is the MAC of eth0 inside a sandbox's namespace.
func guestMAC(t *testing.T, nsPath string) net.HardwareAddr {
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
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return eth0.Attrs().HardwareAddr
}

// TestRestartReachableAtOnce replaces a sandbox (teardown, setup with the same
// address) while the host still has a neighbour entry for it, and connects
// from the host on the first attempt. With a random MAC per setup, the host
// kept sending to the old MAC for up to a minute.
func TestRestartReachableAtOnce(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	// Another member keeps the bridge, and with it the host's neighbour cache, alive.
	mustSetup(t, Net{Project: p, Name: "keep", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 10)})
	n := Net{Project: p, Name: "web", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 11)}
	br := BridgeName(p, "g")
	for round := range 3 {
		arps := captureARP(t, br)
		h, err := Setup(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if !sawGARP(arps, n.IP) {
			t.Errorf("round %d: no gratuitous ARP for %s reached the bridge", round, n.IP)
		}
		if got, want := guestMAC(t, h.NetNSPath()), MACFor(n.IP); !bytes.Equal(got, want) {
			t.Errorf("round %d: eth0 has MAC %s, want %s", round, got, want)
		}
		var ln net.Listener
		if err := Within(h.NetNSPath(), func() (err error) { ln, err = net.Listen("tcp", "0.0.0.0:0"); return err }); err != nil {
			t.Fatal(err)
		}
		echo(t, ln)
		addr := net.JoinHostPort(n.IP.String(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
		// One attempt (reach's timeout is 2s): no retries, no sleeps.
		if err := reach("", addr); err != nil {
			t.Fatalf("round %d: host -> %s: %v (the host's neighbour entry: %s, the sandbox's MAC: %s)",
				round, addr, err, hostNeigh(t, br, n.IP.AsSlice()), guestMAC(t, h.NetNSPath()))
		}
		if got, want := hostNeigh(t, br, n.IP.AsSlice()), MACFor(n.IP); !bytes.Equal(got, want) {
			t.Errorf("round %d: the host's neighbour entry for %s is %s, want %s", round, n.IP, got, want)
		}
		ln.Close()
		if err := Teardown(ctx, p, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	bl, err := netlink.LinkByName(br)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bl.Attrs().HardwareAddr, MACFor(gateway(sn)); !bytes.Equal(got, want) {
		t.Errorf("bridge %s has MAC %s, want %s", br, got, want)
	}
}

// BenchmarkRestartReachable measures a restart as the host sees it: from
// Teardown of a sandbox to the first echoed round trip from the host to its
// replacement (same address, new veth), while another member keeps the
// bridge and the host's neighbour entry alive.
func BenchmarkRestartReachable(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	p := "bench" + hex.EncodeToString(hash(b.Name()))[:6]
	defer TeardownProject(ctx, p)
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		b.Fatal(err)
	}
	var sn netip.Prefix
	for i := range 256 {
		c := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 202, byte(i), 0}), 24)
		if overlapping(c, routes) == "" {
			sn = c
			break
		}
	}
	if !sn.IsValid() {
		b.Fatal("no free subnet in 10.202.0.0/16")
	}
	if _, err := Setup(ctx, Net{Project: p, Name: "keep", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 10)}); err != nil {
		b.Fatal(err)
	}
	n := Net{Project: p, Name: "web", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 11)}
	start := func() (net.Listener, string) {
		h, err := Setup(ctx, n)
		if err != nil {
			b.Fatal(err)
		}
		var ln net.Listener
		if err := Within(h.NetNSPath(), func() (err error) { ln, err = net.Listen("tcp", "0.0.0.0:0"); return err }); err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); io.Copy(c, c) }()
			}
		}()
		return ln, net.JoinHostPort(n.IP.String(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	ln, addr := start()
	if err := reach("", addr); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ln.Close()
		if err := Teardown(ctx, p, n.Name); err != nil {
			b.Fatal(err)
		}
		ln, addr = start()
		if err := reach("", addr); err != nil {
			b.Fatal(err)
		}
	}
	ln.Close()
}
