//go:build linux

package nsnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// vnetHdrLen is the size of the virtio-net header libkrun asks for
// (TUNSETVNETHDRSZ 12: struct virtio_net_hdr_v1).
const vnetHdrLen = 12

// openTap attaches to the tap device name the way libkrun's tap backend
// does: TUNSETIFF with IFF_TAP|IFF_NO_PI (and IFF_VNET_HDR when vnet), a
// virtio-net header of 12 bytes, no offloads, non-blocking.
func openTap(name string, vnet bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	if err == nil && vnet {
		err = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen)
	}
	if err == nil {
		err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach to tap %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// tapGuest plays the VM of a sandbox set up with SetupTap: it attaches to the
// tap as libkrun does, and carries the frames to and from a tap named eth0
// in a network namespace of its own (the guest's kernel), which it
// configures from the handle as the guest's init would. It returns the
// guest's namespace.
func tapGuest(t *testing.T, h *Handle) string {
	t.Helper()
	hostSide, err := openTap(h.TapName(), true)
	if err != nil {
		t.Fatal(err)
	}
	nsPath := filepath.Join(t.TempDir(), "guest")
	if err := createNetNS(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(nsPath) })
	var guestSide *os.File
	if err := Within(nsPath, func() (err error) { guestSide, err = openTap("eth0", false); return err }); err != nil {
		hostSide.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	pump := func(from, to *os.File, strip, prepend int) {
		defer wg.Done()
		buf := make([]byte, 65536+vnetHdrLen)
		for {
			n, err := from.Read(buf[prepend:])
			if err != nil {
				return
			}
			for i := range prepend {
				buf[i] = 0
			}
			if n+prepend <= strip {
				continue
			}
			if _, err := to.Write(buf[strip : prepend+n]); err != nil && errors.Is(err, os.ErrClosed) {
				return
			}
		}
	}
	wg.Add(2)
	go pump(hostSide, guestSide, vnetHdrLen, 0)
	go pump(guestSide, hostSide, 0, vnetHdrLen)
	t.Cleanup(func() {
		hostSide.Close()
		guestSide.Close()
		wg.Wait()
	})

	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eth0, err := nh.LinkByName("eth0")
	must(err)
	lo, err := nh.LinkByName("lo")
	must(err)
	must(nh.LinkSetUp(lo))
	must(nh.LinkSetHardwareAddr(eth0, h.MAC()))
	must(nh.LinkSetMTU(eth0, h.MTU()))
	pfx := h.Prefix()
	must(nh.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)}}))
	must(nh.LinkSetUp(eth0))
	if gw := h.DefaultRoute(); gw.IsValid() {
		must(nh.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}))
	}
	// Wait for the bridge to forward on the tap, now that it has a carrier.
	waitForwarding(h.TapName(), 2*time.Second)
	return nsPath
}

func TestTap(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	out := testHost(t, publicStandIn)
	peer := mustSetup(t, Net{Project: p, Name: "peer", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 10)})
	vm, err := SetupTap(ctx, Net{Project: p, Name: "vm", Scope: ScopePublic, Group: "g", Subnet: sn, IP: host(sn, 11)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Teardown(ctx, p, "vm"); err != nil {
			t.Error(err)
		}
		if _, err := netlink.LinkByName(TapName(p, "vm")); err == nil {
			t.Errorf("tap %s left after Teardown", TapName(p, "vm"))
		}
	})
	// What the krun driver hands to libkrun and to the guest's init.
	if vm.TapName() != TapName(p, "vm") || len(vm.TapName()) > 15 || vm.NetNSPath() != "" {
		t.Errorf("TapName %q, NetNSPath %q", vm.TapName(), vm.NetNSPath())
	}
	if !bytes.Equal(vm.MAC(), MACFor(host(sn, 11))) || vm.Addr() != host(sn, 11) ||
		vm.Prefix() != netip.PrefixFrom(host(sn, 11), sn.Bits()) || vm.Gateway() != host(sn, 1) ||
		vm.DefaultRoute() != host(sn, 1) || vm.DNS() != host(sn, 1) || vm.MTU() < 1280 {
		t.Errorf("MAC %s, Addr %s, Prefix %s, Gateway %s, DefaultRoute %s, DNS %s, MTU %d",
			vm.MAC(), vm.Addr(), vm.Prefix(), vm.Gateway(), vm.DefaultRoute(), vm.DNS(), vm.MTU())
	}
	tl, err := netlink.LinkByName(vm.TapName())
	if err != nil {
		t.Fatal(err)
	}
	br, err := netlink.LinkByName(BridgeName(p, "g"))
	if err != nil {
		t.Fatal(err)
	}
	if tl.Type() != "tuntap" || tl.Attrs().MasterIndex != br.Attrs().Index || !strings.HasPrefix(tl.Attrs().Alias, sandboxTag(p, "vm")) {
		t.Errorf("tap %s: type %s, master %d (bridge %d), alias %q", tl.Attrs().Name, tl.Type(), tl.Attrs().MasterIndex, br.Attrs().Index, tl.Attrs().Alias)
	}
	guest := tapGuest(t, vm)

	// Host and guest reach each other.
	lv := listenIn(t, guest, "0.0.0.0:0")
	vmAddr := net.JoinHostPort(vm.IP().String(), fmt.Sprint(lv.Port))
	mustReach(t, "", vmAddr)
	if got := hostNeigh(t, BridgeName(p, "g"), vm.IP().AsSlice()); !bytes.Equal(got, vm.MAC()) {
		t.Errorf("the host's neighbour entry for %s is %s, want %s", vm.IP(), got, vm.MAC())
	}
	// The group: both ways.
	lp := listenIn(t, peer.NetNSPath(), "0.0.0.0:0")
	mustReach(t, guest, net.JoinHostPort(peer.IP().String(), fmt.Sprint(lp.Port)))
	mustReach(t, peer.NetNSPath(), vmAddr)
	// Scope public: the outside, not private hosts, not the host.
	out.admit(vm)
	mustReach(t, guest, out.at(publicStandIn))
	mustNotReach(t, guest, out.at("192.168.77.2"))
	hostLn := listenIn(t, "", net.JoinHostPort(vm.Gateway().String(), "0"))
	mustNotReach(t, guest, hostLn.String())
	// A spoofed source address goes nowhere.
	spoofed := host(sn, 99)
	if err := Within(guest, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: spoofed.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := reachFrom(guest, spoofed, net.JoinHostPort(peer.IP().String(), fmt.Sprint(lp.Port))); err == nil {
		t.Errorf("the guest reached %s from the spoofed address %s", peer.IP(), spoofed)
	}

	// Published ports, TCP and UDP, through the proxy and the handle's dialer.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tcpPx, err := ListenProxy(pctx, "tcp", "127.0.0.1:0", vm.Dialer("tcp", lv.Port))
	if err != nil {
		t.Fatal(err)
	}
	go tcpPx.Serve(pctx)
	mustReach(t, "", tcpPx.Addr().String())
	u := udpEchoIn(t, guest, "0.0.0.0:0")
	udpPx, err := ListenProxy(pctx, "udp", "127.0.0.1:0", vm.Dialer("udp", u.Port))
	if err != nil {
		t.Fatal(err)
	}
	go udpPx.Serve(pctx)
	conn, err := net.Dial("udp", udpPx.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte("datagram")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "datagram" {
		t.Errorf("udp through the proxy: %q, %v", buf[:n], err)
	}

	// DNS through the forwarder on the gateway.
	up, _ := fakeDNS(t)
	f, err := ServeDNS(ctx, vm, []netip.AddrPort{up})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Addr() != netip.AddrPortFrom(vm.DNS(), 53) {
		t.Errorf("forwarder on %s, DNS() %s", f.Addr(), vm.DNS())
	}
	mustResolve(t, guest, f.Addr())

	res, err := List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range res.Links {
		found = found || (l.Name == vm.TapName() && l.Kind == "tuntap")
	}
	if !found {
		t.Errorf("List does not show the tap:\n%s", res)
	}
}

// TestTapGroupScope checks a VM of scope group: its group only.
func TestTapGroupScope(t *testing.T) {
	ctx := context.Background()
	p := project(t)
	sn := subnet(t, "g")
	out := testHost(t, publicStandIn)
	peer := mustSetup(t, Net{Project: p, Name: "peer", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 10)})
	vm, err := SetupTap(ctx, Net{Project: p, Name: "vm", Scope: ScopeGroup, Group: "g", Subnet: sn, IP: host(sn, 11)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(ctx, p, "vm") })
	if vm.DefaultRoute().IsValid() || vm.DNS().IsValid() {
		t.Errorf("scope group: DefaultRoute %s, DNS %s, want none", vm.DefaultRoute(), vm.DNS())
	}
	guest := tapGuest(t, vm)
	lp := listenIn(t, peer.NetNSPath(), "0.0.0.0:0")
	mustReach(t, guest, net.JoinHostPort(peer.IP().String(), fmt.Sprint(lp.Port)))
	// A guest that adds a default route itself still gets nowhere else.
	if err := Within(guest, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: vm.Gateway().AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	out.admit(vm)
	mustNotReach(t, guest, out.at(publicStandIn))
	hostLn := listenIn(t, "", net.JoinHostPort(vm.Gateway().String(), "0"))
	mustNotReach(t, guest, hostLn.String())
	if _, err := SetupTap(ctx, Net{Project: p, Name: "none", Scope: ScopeNone}); err == nil || !strings.Contains(err.Error(), "no network interface") {
		t.Errorf("SetupTap of scope none: %v", err)
	}
}
