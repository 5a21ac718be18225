//go:build linux

package nsnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Setup creates the network of a sandbox: its namespace, and for every
// scope but none its network's bridge (shared with the other sandboxes of
// the network and created by the first), its veth pair, its address and
// routes, and its firewall rules. Leftovers of an earlier run of the same
// sandbox (a supervisor that was killed) are removed first. When Setup
// fails, it removes what it created.
func Setup(ctx context.Context, n Net) (*Handle, error) {
	return setupLocked(ctx, n, false)
}

// SetupTap creates the network of a sandbox that runs in a virtual machine
// (the krun driver): instead of a namespace and a veth pair, a persistent tap
// device on its network's bridge, which the VMM attaches to the guest's
// virtio-net device (krun_add_net_tap with [Handle.TapName] and
// [Handle.MAC]). The bridge, the address, the firewall rules, and what
// [ServeDNS], [Handle.Dialer] and [ListenProxy] do are those of Setup; the
// guest configures its interface itself from the handle (see the package
// documentation). Scope none has no interface: there is no tap to set up.
// [Teardown] removes the tap like a veth.
func SetupTap(ctx context.Context, n Net) (*Handle, error) {
	if n.Scope == ScopeNone {
		return nil, fmt.Errorf("sandbox %s: scope none has no network interface: give the VM no NIC instead of a tap", n.Name)
	}
	return setupLocked(ctx, n, true)
}

func setupLocked(ctx context.Context, n Net, tap bool) (*Handle, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	h, err := setup(ctx, n, tap)
	if err != nil {
		if terr := teardown(n.Project, n.Name); terr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", terr))
		}
		return nil, fmt.Errorf("set up the network of sandbox %s: %w", n.Name, err)
	}
	return h, nil
}

func setup(ctx context.Context, n Net, tap bool) (*Handle, error) {
	if err := teardown(n.Project, n.Name); err != nil {
		return nil, fmt.Errorf("remove what an earlier run left: %w", err)
	}
	h := &Handle{net: n}
	var inside *netlink.Handle
	var ns netns.NsHandle
	if !tap {
		h.nsPath = NetNSPath(n.Project, n.Name)
		var err error
		if ns, inside, err = newNamespace(h.nsPath); err != nil {
			return nil, err
		}
		defer ns.Close()
		defer inside.Close()
		if n.Scope == ScopeNone {
			return h, ctx.Err()
		}
	}

	network := n.network()
	br, subnet, err := ensureBridge(n.Project, network, n.Subnet)
	if err != nil {
		return nil, err
	}
	h.net.Subnet = subnet
	if h.net.IP, err = pickIP(br, subnet, n); err != nil {
		return nil, err
	}
	fw, err := newFirewall()
	if err != nil {
		return nil, err
	}
	if err := fw.ensureBase(); err != nil {
		return nil, err
	}
	if err := fw.ensureNetwork(n.Project, network, br.Attrs().Name); err != nil {
		return nil, err
	}
	h.mtu = uplinkMTU()
	if h.mtu == 0 {
		h.mtu = 1500
	}
	port, err := addPort(h, br, tap, ns)
	if err != nil {
		return nil, err
	}
	name := port.Attrs().Name
	if network == DefaultNetwork {
		// Sandboxes that share the default network are not a group.
		if err := netlink.LinkSetIsolated(port, true); err != nil {
			return nil, fmt.Errorf("isolate bridge port %s: %w", name, err)
		}
	}
	if err := fw.addSandbox(n.Project, n.Name, n.Scope, br.Attrs().Name, name, h.net.IP, gateway(subnet)); err != nil {
		return nil, err
	}
	if err := forgetNeighbour(br, h.net.IP); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(port); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", name, err)
	}
	if !tap {
		if err := configureEth0(inside, h); err != nil {
			return nil, err
		}
	}
	if n.Scope == ScopePublic || n.Scope == ScopeAny {
		if err := enableForward(); err != nil {
			return nil, err
		}
	}
	return h, ctx.Err()
}

// newNamespace creates the namespace of a sandbox at path, with lo up, and
// returns it with a netlink handle inside it; the caller closes both.
func newNamespace(path string) (netns.NsHandle, *netlink.Handle, error) {
	if err := createNetNS(path); err != nil {
		return 0, nil, err
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return 0, nil, fmt.Errorf("open network namespace: %w", err)
	}
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return 0, nil, fmt.Errorf("netlink in the sandbox's namespace: %w", err)
	}
	lo, err := inside.LinkByName("lo")
	if err == nil {
		err = inside.LinkSetUp(lo)
	}
	if err != nil {
		inside.Close()
		ns.Close()
		return 0, nil, fmt.Errorf("bring up lo: %w", err)
	}
	return ns, inside, nil
}

// addPort creates the sandbox's port on the bridge br, down: the host side
// of a veth pair whose other end is eth0 in ns, or a tap. It names it with
// the sandbox's tag and address, and turns IPv6 off on it.
func addPort(h *Handle, br netlink.Link, tap bool, ns netns.NsHandle) (netlink.Link, error) {
	n := h.net
	la := netlink.LinkAttrs{Name: VethName(n.Project, n.Name), Alias: sandboxTag(n.Project, n.Name) + " " + n.IP.String(),
		MasterIndex: br.Attrs().Index, MTU: h.mtu}
	var err error
	if tap {
		la.Name = TapName(n.Project, n.Name)
		h.tap = la.Name
		// Not multi-queue, as libkrun opens it; the opener's own flags
		// (IFF_NO_PI, IFF_VNET_HDR) replace these.
		err = netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: la, Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR})
	} else {
		err = netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerHardwareAddr: MACFor(n.IP),
			PeerNamespace: netlink.NsFd(int(ns))})
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", la.Name, err)
	}
	port, err := netlink.LinkByName(la.Name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", la.Name, err)
	}
	if err := netlink.LinkSetAlias(port, la.Alias); err != nil {
		return nil, fmt.Errorf("name link %s: %w", la.Name, err)
	}
	if tap { // the tap ioctls take no MTU
		if err := netlink.LinkSetMTU(port, h.mtu); err != nil {
			return nil, fmt.Errorf("MTU of %s: %w", la.Name, err)
		}
	}
	if err := disableIPv6(la.Name); err != nil {
		return nil, err
	}
	return port, nil
}

// configureEth0 gives the sandbox's end of its veth pair its address and
// routes, and announces it.
func configureEth0(inside *netlink.Handle, h *Handle) error {
	eth0, err := inside.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 in the sandbox: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: h.net.IP.AsSlice(), Mask: net.CIDRMask(h.net.Subnet.Bits(), 32)}}
	if err := inside.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("address %s on eth0: %w", addr, err)
	}
	if err := inside.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bring up eth0: %w", err)
	}
	// The bridge enables the port once the kernel's link watcher has seen
	// its carrier, a moment after eth0 is up; an announcement sent before
	// is dropped.
	waitForwarding(VethName(h.net.Project, h.net.Name), time.Second)
	if err := announce(h.nsPath, eth0.Attrs().Index, h.net.IP); err != nil {
		return err
	}
	if gw := h.DefaultRoute(); gw.IsValid() {
		if err := inside.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

// ensureBridge returns the bridge of a network and its subnet, creating it
// when it does not exist. want may be zero for the default network.
func ensureBridge(project, network string, want netip.Prefix) (netlink.Link, netip.Prefix, error) {
	name := BridgeName(project, network)
	l, err := netlink.LinkByName(name)
	if err == nil && l.Attrs().Alias == "" {
		// A Setup that died between creating the bridge and naming it
		// (the kernel takes no alias at creation).
		if err := netlink.LinkDel(l); err != nil {
			return nil, netip.Prefix{}, fmt.Errorf("delete unfinished bridge %s: %w", name, err)
		}
		l, err = netlink.LinkByName(name)
	}
	if err == nil {
		p, kind, nw, val, ok := parseTag(l.Attrs().Alias)
		if !ok || p != project || kind != "network" || nw != network {
			return nil, netip.Prefix{}, fmt.Errorf("link %s exists but is not the bridge of network %q of project %q (alias %q): remove it (ip link del %s)", name, network, project, l.Attrs().Alias, name)
		}
		have, err := netip.ParsePrefix(val)
		if err != nil {
			return nil, netip.Prefix{}, fmt.Errorf("bridge %s: no subnet in its alias %q: remove it (ip link del %s)", name, l.Attrs().Alias, name)
		}
		if want.IsValid() && want != have {
			return nil, netip.Prefix{}, fmt.Errorf("network %q runs with subnet %s, not %s: stop its sandboxes (sbx down) before changing its subnet", network, have, want)
		}
		if err := setBridgeMAC(l, have); err != nil {
			return nil, netip.Prefix{}, err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, netip.Prefix{}, fmt.Errorf("bring up bridge %s: %w", name, err)
		}
		return l, have, nil
	}
	if !isNotFound(err) {
		return nil, netip.Prefix{}, fmt.Errorf("bridge %s: %w", name, err)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("list routes: %w", err)
	}
	subnet := want
	if !subnet.IsValid() {
		if subnet, err = defaultSubnet(project, routes); err != nil {
			return nil, netip.Prefix{}, err
		}
	} else if r := overlapping(subnet, routes); r != "" {
		return nil, netip.Prefix{}, fmt.Errorf("subnet %s of network %q overlaps the host's route %s: give the network a subnet no route uses (ip route shows them)", subnet, network, r)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, Alias: networkTag(project, network) + " " + subnet.String(),
		HardwareAddr: MACFor(gateway(subnet))}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("create bridge %s: %w", name, err)
	}
	l, err = netlink.LinkByName(name)
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(l, br.Alias); err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("name bridge %s: %w", name, err)
	}
	if err := disableIPv6(name); err != nil {
		return nil, netip.Prefix{}, err
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: gateway(subnet).AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := netlink.AddrAdd(l, gw); err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("address %s on bridge %s: %w", gw, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("bring up bridge %s: %w", name, err)
	}
	return l, subnet, nil
}

// setBridgeMAC gives a bridge the MAC of its gateway address (a bridge made
// by an older sbx has the lowest MAC of its ports, which changes as sandboxes
// come and go, and the sandboxes' entries for their gateway go stale).
func setBridgeMAC(l netlink.Link, subnet netip.Prefix) error {
	want := MACFor(gateway(subnet))
	if bytes.Equal(l.Attrs().HardwareAddr, want) {
		return nil
	}
	if err := netlink.LinkSetHardwareAddr(l, want); err != nil {
		return fmt.Errorf("set the MAC of bridge %s to %s: %w", l.Attrs().Name, want, err)
	}
	return nil
}

// forgetNeighbour deletes the host's neighbour entry for a sandbox's address
// on its bridge: one left by an earlier run of the sandbox may name a MAC
// that an older sbx chose at random.
func forgetNeighbour(br netlink.Link, ip netip.Addr) error {
	err := netlink.NeighDel(&netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V4, IP: ip.AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("forget the neighbour entry of %s on %s: %w", ip, br.Attrs().Name, err)
	}
	return nil
}

// waitForwarding waits until the bridge port port forwards, at most max.
func waitForwarding(port string, max time.Duration) {
	const forwarding = "3" // BR_STATE_FORWARDING
	path := "/sys/class/net/" + port + "/brport/state"
	for deadline := time.Now().Add(max); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) == forwarding {
			return
		}
	}
}

// announce sends a gratuitous ARP request for ip from the interface ifindex
// inside the namespace at nsPath, so that whoever still holds an entry for
// the address (a peer of the group) updates it at once.
func announce(nsPath string, ifindex int, ip netip.Addr) error {
	mac := MACFor(ip)
	err := Within(nsPath, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
		copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		return unix.Sendto(fd, garp(mac, ip), 0, to)
	})
	if err != nil {
		return fmt.Errorf("announce %s (gratuitous ARP): %w", ip, err)
	}
	return nil
}

// garp is the ARP payload of a gratuitous request: the sender's and the
// target's protocol address are both ip.
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	a := ip.As4()
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1} // Ethernet, IPv4, request
	b = append(b, mac...)
	b = append(b, a[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, a[:]...)
}

// htons converts to network byte order, as the packet socket API wants.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// overlapping describes a route of the main table that overlaps subnet, or
// returns "". Default routes do not count.
func overlapping(subnet netip.Prefix, routes []netlink.Route) string {
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := prefixOf(r.Dst)
		if !ok || p.Bits() == 0 || !p.Overlaps(subnet) {
			continue
		}
		dev := fmt.Sprintf("ifindex %d", r.LinkIndex)
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
			if _, _, nw, _, ok := parseTag(l.Attrs().Alias); ok {
				p, _, _, _, _ := parseTag(l.Attrs().Alias)
				dev += fmt.Sprintf(" (network %q of sbx project %q)", nw, p)
			}
		}
		return p.String() + " dev " + dev
	}
	return ""
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}

// defaultSubnet picks the default network's /24 in 10.199.0.0/16.
func defaultSubnet(project string, routes []netlink.Route) (netip.Prefix, error) {
	start := int(hash(project, "default-subnet")[0])
	for i := range 256 {
		x := byte((start + i) % 256)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 199, x, 0}), 24)
		if overlapping(p, routes) == "" {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no /24 of %s is free for the default network of project %q: stop other projects' public sandboxes, or put this project's sandboxes in a network block", defaultPool, project)
}

// pickIP checks n.IP against the other sandboxes on br, or allocates one.
func pickIP(br netlink.Link, subnet netip.Prefix, n Net) (netip.Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list links: %w", err)
	}
	used := map[netip.Addr]string{}
	for _, l := range links {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		if _, kind, name, val, ok := parseTag(l.Attrs().Alias); ok && kind == "sandbox" {
			if a, err := netip.ParseAddr(val); err == nil {
				used[a] = name
			}
		}
	}
	if n.IP.IsValid() {
		if err := usable(subnet, n.IP); err != nil {
			return netip.Addr{}, err
		}
		if other, ok := used[n.IP]; ok {
			return netip.Addr{}, fmt.Errorf("%s is already the address of sandbox %s in network %q: give each sandbox its own", n.IP, other, n.network())
		}
		return n.IP, nil
	}
	size := uint64(1) << (32 - subnet.Bits())
	hosts := size - 3 // network, gateway, broadcast
	h := hash(n.Project, "ip", n.Name)
	start := uint64(h[0])<<16 | uint64(h[1])<<8 | uint64(h[2])
	base := subnet.Masked().Addr().As4()
	first := uint64(base[0])<<24 | uint64(base[1])<<16 | uint64(base[2])<<8 | uint64(base[3])
	for i := range hosts {
		v := first + 2 + (start+i)%hosts
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if _, taken := used[a]; !taken {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no address is left in %s of network %q", subnet, n.network())
}

// uplinkMTU is the MTU of the interface of the default route, when it is
// below 1500, so that sandboxes do not send packets it cannot carry.
func uplinkMTU() int {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU >= 1280 && l.Attrs().MTU < 1500 {
			return l.Attrs().MTU
		}
	}
	return 0
}

func disableIPv6(dev string) error {
	path := "/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6"
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6 on %s: %w", dev, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// enableForward turns net.ipv4.ip_forward on, noting that sbx did.
func enableForward() error {
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return fmt.Errorf("read %s: %w", ipForward, err)
	}
	if strings.TrimSpace(string(b)) != "0" {
		return nil
	}
	if err := os.WriteFile(fwdFile, []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("record ip_forward: %w", err)
	}
	if err := os.WriteFile(ipForward, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding (%s): %w", ipForward, err)
	}
	return nil
}

// restoreForward turns ip_forward back off when sbx turned it on and no
// sandbox with NAT is left.
func restoreForward(fw *firewall) error {
	if _, err := os.Stat(fwdFile); err != nil {
		return nil
	}
	rs, err := fw.rules()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.rule.Chain.Name == "postrouting" && r.tag != "" {
			return nil
		}
	}
	if b, err := os.ReadFile(ipForward); err == nil && strings.TrimSpace(string(b)) == "1" {
		if err := os.WriteFile(ipForward, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("restore %s: %w", ipForward, err)
		}
	}
	if err := os.Remove(fwdFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Teardown removes the network of a sandbox: its veth, its rules and its
// namespace, then the bridge and rules of its network when no sandbox is
// left on it. It is idempotent and needs nothing that Setup returned.
func Teardown(ctx context.Context, project, name string) error {
	if err := checkOldName("project", project); err != nil {
		return err
	}
	if err := checkOldName("sandbox", name); err != nil {
		return err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := teardown(project, name); err != nil {
		return fmt.Errorf("tear down the network of sandbox %s: %w", name, err)
	}
	return nil
}

// TeardownProject removes everything a project owns, whether or not its
// sandboxes are still known (what `sbx down` of the whole project wants).
func TeardownProject(ctx context.Context, project string) error {
	if err := checkOldName("project", project); err != nil {
		return err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := list(project)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, l := range res.Links {
		if _, kind, n, _, ok := parseTag(l.Alias); ok && kind == "sandbox" {
			names[n] = true
		}
	}
	for _, r := range res.Rules {
		if _, kind, n, _, ok := parseTag(r.Tag); ok && kind == "sandbox" {
			names[n] = true
		}
	}
	for _, p := range res.NetNS {
		names[p[strings.LastIndexByte(p, '/')+1:]] = true
	}
	var errs []error
	for n := range names {
		errs = append(errs, teardown(project, n))
	}
	if len(names) == 0 {
		errs = append(errs, teardown(project, "-"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down the networks of project %s: %w", project, err)
	}
	return nil
}

func teardown(project, name string) error {
	var errs []error
	for _, port := range []string{VethName(project, name), TapName(project, name)} {
		if l, err := netlink.LinkByName(port); err == nil {
			if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", port, err))
			}
		} else if !isNotFound(err) {
			errs = append(errs, fmt.Errorf("link %s: %w", port, err))
		}
	}
	fw, err := newFirewall()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, fw.deleteTagged(map[string]bool{sandboxTag(project, name): true}, nil))
	errs = append(errs, removeNetNS(NetNSPath(project, name)))
	errs = append(errs, pruneNetworks(fw, project))
	errs = append(errs, restoreForward(fw))
	errs = append(errs, fw.dropTablesIfUnused())
	return errors.Join(errs...)
}

// pruneNetworks removes a project's bridges that no sandbox uses any more,
// and the rules and chains of networks whose bridge is gone.
func pruneNetworks(fw *firewall, project string) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	ports := map[int]int{}
	for _, l := range links {
		ports[l.Attrs().MasterIndex]++
	}
	var errs []error
	exists := map[string]bool{}
	tags, chainsOf := map[string]bool{}, map[string]bool{}
	for _, l := range links {
		p, kind, nw, _, ok := parseTag(l.Attrs().Alias)
		if !ok || p != project || kind != "network" || l.Attrs().Name != BridgeName(project, nw) {
			continue
		}
		if ports[l.Attrs().Index] > 0 {
			exists[l.Attrs().Name] = true
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", l.Attrs().Name, err))
			exists[l.Attrs().Name] = true
			continue
		}
		tags[networkTag(project, nw)] = true
		chainsOf[l.Attrs().Name] = true
	}
	rs, err := fw.rules()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range rs {
		p, kind, nw, _, ok := parseTag(r.tag)
		if ok && p == project && kind == "network" && !exists[BridgeName(project, nw)] {
			tags[r.tag] = true
			chainsOf[BridgeName(project, nw)] = true
		}
	}
	if len(tags) > 0 {
		errs = append(errs, fw.deleteTagged(tags, chainsOf))
	}
	return errors.Join(errs...)
}

// List reports every link, namespace, chain and rule that project owns;
// project "" lists those of every project.
func List(ctx context.Context, project string) (Resources, error) {
	if project != "" {
		if err := checkOldName("project", project); err != nil {
			return Resources{}, err
		}
	}
	unlock, err := lock(ctx)
	if err != nil {
		return Resources{}, err
	}
	defer unlock()
	return list(project)
}

func list(project string) (Resources, error) {
	var res Resources
	links, err := netlink.LinkList()
	if err != nil {
		return res, fmt.Errorf("list links: %w", err)
	}
	bridges := map[string]bool{}
	for _, l := range links {
		a := l.Attrs()
		if !strings.HasPrefix(a.Name, bridgePrefix) && !strings.HasPrefix(a.Name, vethPrefix) && !strings.HasPrefix(a.Name, tapPrefix) {
			continue
		}
		// A link without alias is from a Setup that died right after
		// creating it; only the names tell, and they hide the project.
		if !ownedBy(a.Alias, project) && (project != "" || a.Alias != "") {
			continue
		}
		res.Links = append(res.Links, Link{Name: a.Name, Kind: l.Type(), Alias: a.Alias})
		if p, kind, nw, _, _ := parseTag(a.Alias); kind == "network" {
			bridges[BridgeName(p, nw)] = true
		}
	}
	if res.NetNS, err = listNetNS(project); err != nil {
		return res, fmt.Errorf("list network namespaces: %w", err)
	}
	fw, err := newFirewall()
	if err != nil {
		return res, err
	}
	rs, err := fw.rules()
	if err != nil {
		return res, err
	}
	for _, r := range rs {
		if !ownedBy(r.tag, project) {
			continue
		}
		res.Rules = append(res.Rules, Rule{Family: family(r.rule.Table), Table: r.rule.Table.Name,
			Chain: r.rule.Chain.Name, Handle: r.rule.Handle, Tag: r.tag})
		if p, kind, nw, _, _ := parseTag(r.tag); kind == "network" {
			bridges[BridgeName(p, nw)] = true
		}
	}
	chains, err := fw.chains(fw.inet)
	if err != nil {
		return res, err
	}
	for name := range chains {
		if br, ok := networkChain(name); ok && (project == "" || bridges[br]) {
			res.Chains = append(res.Chains, "inet "+tableName+" "+name)
		}
	}
	if _, err := os.Stat(fwdFile); err == nil {
		res.IPForward = true
	}
	return res, nil
}
