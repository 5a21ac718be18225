package nsnet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// Scope values for [Net.Scope]; the same words as the Sandboxfile's.
const (
	ScopeNone   = "none"
	ScopeGroup  = "group"
	ScopePublic = "public"
	ScopeAny    = "any"
)

// DefaultNetwork is the name of a project's network for sandboxes of scope
// public or any that name no group. It cannot collide with a Sandboxfile
// network, whose names are identifiers.
const DefaultNetwork = "@default"

// ErrNeedsLinux is returned on systems other than Linux.
var ErrNeedsLinux = errors.New("the ns driver's networking needs Linux: use the krun driver on this system")

const (
	runDir  = "/run/sbx"
	nsDir   = runDir + "/netns"
	lockDir = runDir
	// fwdFile exists while sbx holds net.ipv4.ip_forward on that was off.
	fwdFile = runDir + "/ip_forward.sbx"

	bridgePrefix = "sbxb"
	vethPrefix   = "sbxv"
	tapPrefix    = "sbxt"
	tagPrefix    = "sbx:"

	// defaultPool is where default networks' /24 subnets come from.
	defaultPool = "10.199.0.0/16"
)

// Net describes the network of one sandbox.
type Net struct {
	Project string
	Name    string // the sandbox
	Scope   string // ScopeNone, ScopeGroup, ScopePublic or ScopeAny
	// Group is the network block the sandbox is in: required for ScopeGroup,
	// optional for ScopePublic and ScopeAny (the project's default network
	// otherwise), empty for ScopeNone.
	Group string
	// Subnet is the group's subnet, required with Group. Without Group it
	// may pin the default network's subnet; it is chosen otherwise.
	Subnet netip.Prefix
	// IP is the sandbox's address, required with Group. Without Group it is
	// allocated when zero.
	IP netip.Addr
}

func (n Net) network() string {
	if n.Group != "" {
		return n.Group
	}
	return DefaultNetwork
}

func (n Net) validate() error {
	if err := checkName("project", n.Project); err != nil {
		return err
	}
	if err := checkName("sandbox", n.Name); err != nil {
		return err
	}
	switch n.Scope {
	case ScopeNone:
		if n.Group != "" {
			return fmt.Errorf("sandbox %s: scope none cannot be in network %q", n.Name, n.Group)
		}
		return nil
	case ScopeGroup:
		if n.Group == "" {
			return fmt.Errorf("sandbox %s: scope group needs a network group", n.Name)
		}
	case ScopePublic, ScopeAny:
	default:
		return fmt.Errorf("sandbox %s: unknown network scope %q: use none, group, public or any", n.Name, n.Scope)
	}
	if n.Group != "" {
		if err := checkName("network", n.Group); err != nil {
			return err
		}
		if !n.Subnet.IsValid() || !n.IP.IsValid() {
			return fmt.Errorf("sandbox %s: network %q needs both its subnet and the sandbox's address", n.Name, n.Group)
		}
	}
	if n.Subnet.IsValid() {
		if !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 || n.Subnet.Bits() < 8 {
			return fmt.Errorf("sandbox %s: subnet %s: use an IPv4 subnet between /8 and /30", n.Name, n.Subnet)
		}
		if n.Subnet != n.Subnet.Masked() {
			return fmt.Errorf("sandbox %s: subnet %s has host bits set: write %s", n.Name, n.Subnet, n.Subnet.Masked())
		}
	}
	if n.IP.IsValid() {
		if n.Subnet.IsValid() {
			if err := usable(n.Subnet, n.IP); err != nil {
				return fmt.Errorf("sandbox %s: %w", n.Name, err)
			}
		} else if !n.IP.Is4() {
			return fmt.Errorf("sandbox %s: %s is not an IPv4 address", n.Name, n.IP)
		}
	}
	return nil
}

// usable reports whether ip can be given to a sandbox in subnet: it is
// neither the network address, nor the gateway, nor the broadcast address.
func usable(subnet netip.Prefix, ip netip.Addr) error {
	switch {
	case !subnet.Contains(ip):
		return fmt.Errorf("%s is outside the subnet %s", ip, subnet)
	case ip == subnet.Addr() || ip == gateway(subnet) || ip == broadcast(subnet):
		return fmt.Errorf("%s is reserved in %s (network, gateway or broadcast address)", ip, subnet)
	}
	return nil
}

// Limits on names, in bytes. Every tag ("sbx:" project "/sandbox/" name)
// must fit in an nftables rule comment (NFT_USERDATA_MAXLEN, 256 bytes with
// its type, length and NUL) and, with a space and an address or subnet, in
// an interface alias (IFALIASZ, 255 bytes and a NUL). Interface and chain
// names are hashes of fixed length, whatever the names.
const (
	// MaxProjectLen leaves room for a directory's name of 64 bytes, a dash
	// and a hash of the directory (what sbx passes).
	MaxProjectLen = 95
	// MaxNameLen is the limit for sandbox and network names.
	MaxNameLen = 128
)

func checkName(what, s string) error {
	max := MaxNameLen
	if what == "project" {
		max = MaxProjectLen
	}
	bad := s == "" || len(s) > max || s == "." || s == ".."
	for _, c := range []byte(s) {
		if c <= ' ' || c == '/' || c == 0x7f {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%s name %q cannot name network resources: use at most %d bytes without '/', white space or control characters", what, s, max)
	}
	return nil
}

// checkOldName is what Teardown, TeardownProject and List accept: any name
// that can be a path component, so that what an earlier sbx with looser
// limits created can always be removed.
func checkOldName(what, s string) error {
	if s == "" || len(s) > 255 || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%s name %q cannot have network resources: it is empty, longer than 255 bytes, or holds '/' or NUL", what, s)
	}
	return nil
}

// gateway is the first host address of a subnet: the bridge's address.
func gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	bits := p.Bits()
	for i := range 4 {
		for b := range 8 {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	return netip.AddrFrom4(a)
}

func hash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

func id(project, kind, name string) string { return hex.EncodeToString(hash(project, kind, name))[:10] }

// BridgeName is the name of the bridge of a project's network (14 characters).
func BridgeName(project, network string) string {
	return bridgePrefix + id(project, "network", network)
}

// VethName is the name of the host side of a sandbox's veth pair (14 characters).
func VethName(project, sandbox string) string {
	return vethPrefix + id(project, "sandbox", sandbox)
}

// TapName is the name of the tap device of a sandbox that runs in a VM
// ([SetupTap], 14 characters).
func TapName(project, sandbox string) string {
	return tapPrefix + id(project, "sandbox", sandbox)
}

// NetNSPath is where the network namespace of a sandbox is bind-mounted.
func NetNSPath(project, sandbox string) string {
	return filepath.Join(nsDir, project, sandbox)
}

func networkTag(project, network string) string { return tagPrefix + project + "/network/" + network }
func sandboxTag(project, sandbox string) string { return tagPrefix + project + "/sandbox/" + sandbox }

// parseTag splits a tag (or an alias, which is a tag, a space and a value).
func parseTag(s string) (project, kind, name, value string, ok bool) {
	s, value, _ = strings.Cut(s, " ")
	rest, ok := strings.CutPrefix(s, tagPrefix)
	if !ok {
		return "", "", "", "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || (parts[1] != "network" && parts[1] != "sandbox") {
		return "", "", "", "", false
	}
	return parts[0], parts[1], parts[2], value, true
}

// ownedBy reports whether a tag or alias belongs to project ("" = any project).
func ownedBy(tag, project string) bool {
	p, _, _, _, ok := parseTag(tag)
	return ok && (project == "" || p == project)
}

// Handle is the network of a sandbox that [Setup] or [SetupTap] prepared.
type Handle struct {
	net    Net    // with Subnet and IP resolved
	nsPath string // Setup: the namespace; "" for a tap
	tap    string // SetupTap: the tap device
	mtu    int
}

// NetNSPath is the network namespace file the payload joins with setns(2);
// "" for a sandbox with a tap.
func (h *Handle) NetNSPath() string { return h.nsPath }

// TapName is the tap device the VMM attaches to (krun_add_net_tap); "" for
// a sandbox set up with [Setup].
func (h *Handle) TapName() string { return h.tap }

// IP is the sandbox's address; zero for scope none.
func (h *Handle) IP() netip.Addr { return h.net.IP }

// Addr is the sandbox's address, the same as [Handle.IP].
func (h *Handle) Addr() netip.Addr { return h.net.IP }

// MAC is the MAC address of the sandbox's interface ([MACFor] its address):
// Setup gives it to eth0, a VMM gives it to the guest's NIC
// (krun_add_net_tap's mac). Nil for scope none.
func (h *Handle) MAC() net.HardwareAddr { return MACFor(h.net.IP) }

// Subnet is the subnet of the sandbox's network; zero for scope none.
func (h *Handle) Subnet() netip.Prefix { return h.net.Subnet }

// Prefix is the sandbox's address with the length of its subnet
// (10.88.0.10/24), as the guest's interface takes it; zero for scope none.
func (h *Handle) Prefix() netip.Prefix {
	if !h.net.IP.IsValid() || !h.net.Subnet.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(h.net.IP, h.net.Subnet.Bits())
}

// Gateway is the host's address on the sandbox's network (the subnet's first
// host address); zero for scope none.
func (h *Handle) Gateway() netip.Addr {
	if !h.net.Subnet.IsValid() {
		return netip.Addr{}
	}
	return gateway(h.net.Subnet)
}

// DefaultRoute is the gateway of the sandbox's default route: the
// [Handle.Gateway] for scopes public and any, zero for group (which only
// has the route of its subnet) and none.
func (h *Handle) DefaultRoute() netip.Addr {
	if h.net.Scope != ScopePublic && h.net.Scope != ScopeAny {
		return netip.Addr{}
	}
	return h.Gateway()
}

// DNS is where a [DNSForwarder] started by [ServeDNS] for the sandbox
// answers (port 53): the gateway, for scopes public and any; zero
// otherwise. [ResolvConf] writes the matching resolv.conf.
func (h *Handle) DNS() netip.Addr { return h.DefaultRoute() }

// MTU is the MTU of the sandbox's interface: the MTU of the host's uplink
// when it is below 1500, 1500 otherwise; 0 for scope none.
func (h *Handle) MTU() int { return h.mtu }

// Net is the description the handle was set up from, with the subnet and
// address that were chosen filled in.
func (h *Handle) Net() Net { return h.net }

// Resources is what a project owns on the host.
type Resources struct {
	Links  []Link   // bridges, host-side veths and taps
	NetNS  []string // bind-mounted namespace files
	Chains []string // per-network nftables chains, as "family table chain"
	Rules  []Rule   // nftables rules tagged with the project
	// IPForward is true when sbx holds net.ipv4.ip_forward on (it is not
	// tied to one project).
	IPForward bool
}

// Link is a network interface that sbx created.
type Link struct {
	Name  string
	Kind  string // "bridge", "veth" or "tuntap"
	Alias string // its tag and its subnet or address
}

// Rule is an nftables rule that sbx created.
type Rule struct {
	Family string // "inet" or "bridge"
	Table  string
	Chain  string
	Handle uint64
	Tag    string
}

// Empty reports whether nothing is left (IPForward aside).
func (r Resources) Empty() bool {
	return len(r.Links) == 0 && len(r.NetNS) == 0 && len(r.Chains) == 0 && len(r.Rules) == 0
}

// String lists the resources one a line, for error messages and debugging.
func (r Resources) String() string {
	var b strings.Builder
	for _, l := range r.Links {
		fmt.Fprintf(&b, "link %s (%s) %q\n", l.Name, l.Kind, l.Alias)
	}
	for _, n := range r.NetNS {
		fmt.Fprintf(&b, "netns %s\n", n)
	}
	for _, c := range r.Chains {
		fmt.Fprintf(&b, "chain %s\n", c)
	}
	for _, x := range r.Rules {
		fmt.Fprintf(&b, "rule %s %s %s handle %d %q\n", x.Family, x.Table, x.Chain, x.Handle, x.Tag)
	}
	if r.IPForward {
		b.WriteString("net.ipv4.ip_forward held on by sbx\n")
	}
	return b.String()
}

// Problem is a host prerequisite that [Preflight] found missing.
type Problem struct {
	Check  string // what was checked ("privileges", "nftables", "bridge", "ip_forward")
	Detail string // what is wrong
	Fix    string // what to do about it
	// Fatal is true when no sandbox network can be set up; otherwise only
	// some scopes are affected or it is a notice.
	Fatal bool
}

// String is the problem with its fix on one line.
func (p Problem) String() string { return p.Check + ": " + p.Detail + " (" + p.Fix + ")" }

// MACFor is the MAC address of the interface that holds the IPv4 address ip:
// 02:42 followed by the address's four bytes, as Docker does. A sandbox that
// is replaced keeps its address and so its MAC, and the neighbour caches of
// the host and of its group stay right. It returns nil for other addresses.
func MACFor(ip netip.Addr) net.HardwareAddr {
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil
	}
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}
