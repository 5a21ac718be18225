package lang

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

type netDecl struct {
	out   *Network
	block *hcl.Block
	hosts subnetRange
	ok    bool // the subnet is valid
}

func (l *loader) evalNetworks() {
	for _, name := range l.netNames {
		n := l.networks[name]
		c, diags := n.block.Body.Content(networkSchema())
		l.diags = append(l.diags, diags...)
		a := c.Attributes["subnet"]
		s, ok := l.str(a, stageBase, nil, "")
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Invalid subnet", "%q is not a CIDR prefix: %s. Use a private range such as \"10.88.0.0/24\".", s, err)
			continue
		}
		if p.Masked() != p {
			l.errorf(a.Expr.Range().Ptr(), "Invalid subnet", "%q has host bits set; the network address is %s.", s, p.Masked())
			continue
		}
		hosts, ok := newSubnetRange(p)
		if !ok {
			l.errorf(a.Expr.Range().Ptr(), "Invalid subnet", "%q is too small: the network address, the gateway and the broadcast address are reserved, so no address is left for a sandbox. Use a larger subnet, such as a /24.", s)
			continue
		}
		n.out.Subnet, n.hosts, n.ok = p, hosts, true
	}
	// Overlapping subnets would make routing between groups ambiguous.
	for i, a := range l.netNames {
		for _, b := range l.netNames[i+1:] {
			na, nb := l.networks[a], l.networks[b]
			if na.ok && nb.ok && na.out.Subnet.Overlaps(nb.out.Subnet) {
				l.errorf(nb.block.DefRange.Ptr(), "Overlapping subnets", "network %q (%s) overlaps network %q (%s) defined at %s. Give each network its own range.", b, nb.out.Subnet, a, na.out.Subnet, at(na.block.DefRange))
			}
		}
	}
}

func (l *loader) networkObject() cty.Value {
	m := make(map[string]cty.Value, len(l.netNames))
	for _, name := range l.netNames {
		n := l.networks[name]
		subnet := cty.UnknownVal(cty.String)
		if n.ok {
			subnet = cty.StringVal(n.out.Subnet.String())
		}
		m[name] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "subnet": subnet})
	}
	return cty.ObjectVal(m)
}

// allocateIPs checks declared addresses, then gives every other group member an address:
// first the sticky one from the state when it is still usable, then one derived from a hash of
// the name. Processing in name order keeps the result deterministic.
func (l *loader) allocateIPs() {
	taken := make(map[string]map[netip.Addr]string) // group -> address -> sandbox
	use := func(group string) map[netip.Addr]string {
		if taken[group] == nil {
			taken[group] = make(map[netip.Addr]string)
		}
		return taken[group]
	}
	var pending []*sbDecl
	for _, name := range l.sbxNames {
		sb := l.sbx[name]
		g := sb.out.Network.Group
		n := l.networks[g]
		if g == "" || n == nil || !n.ok {
			continue
		}
		if !sb.ipDeclared {
			pending = append(pending, sb)
			continue
		}
		ip := sb.out.Network.IP
		if !ip.IsValid() {
			continue
		}
		switch {
		case !n.out.Subnet.Contains(ip):
			l.errorf(sb.ipRange.Ptr(), "IP address outside the subnet", "%s is not in network %q (%s). Pick an address inside the subnet, or remove ip to have one allocated.", ip, g, n.out.Subnet)
			sb.out.Network.IP = netip.Addr{}
			continue
		case !n.hosts.usable(ip):
			l.errorf(sb.ipRange.Ptr(), "Reserved IP address", "%s is reserved in %s: the network address, the first address (the gateway) and the broadcast address cannot be given to a sandbox.", ip, n.out.Subnet)
			sb.out.Network.IP = netip.Addr{}
			continue
		}
		if other, dup := use(g)[ip]; dup {
			l.errorf(sb.ipRange.Ptr(), "Duplicate IP address", "%s is already assigned to sandbox %q (%s) in network %q.", ip, other, at(l.sbx[other].ipRange), g)
			continue
		}
		use(g)[ip] = name
	}
	var rest []*sbDecl
	for _, sb := range pending {
		n := l.networks[sb.out.Network.Group]
		if ip, ok := l.opts.sticky[sb.out.Name]; ok && n.hosts.usable(ip) {
			if _, dup := use(n.out.Name)[ip]; !dup {
				use(n.out.Name)[ip] = sb.out.Name
				sb.out.Network.IP, sb.out.Network.IPAllocated = ip, true
				continue
			}
		}
		rest = append(rest, sb)
	}
	for _, sb := range rest {
		n := l.networks[sb.out.Network.Group]
		ip, ok := n.hosts.allocate(sb.out.Name, use(n.out.Name))
		if !ok {
			l.errorf(sb.netRange.Ptr(), "Subnet exhausted", "No free address is left in network %q (%s) for sandbox %q. Use a larger subnet.", n.out.Name, n.out.Subnet, sb.out.Name)
			continue
		}
		use(n.out.Name)[ip] = sb.out.Name
		sb.out.Network.IP, sb.out.Network.IPAllocated = ip, true
	}
}

type portUse struct {
	ip  netip.Addr
	sb  string
	rng hcl.Range
}

// checkPorts reports host ports published twice. A wildcard address conflicts with every
// address on the same port and protocol, as it would when binding.
func (l *loader) checkPorts() {
	seen := make(map[string][]portUse)
	for _, name := range l.sbxNames {
		sb := l.sbx[name]
		for i, p := range sb.out.Ports {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				continue
			}
			key := fmt.Sprintf("%d/%s", p.Host, p.Protocol)
			rng := sb.portRanges[i]
			for _, u := range seen[key] {
				if u.ip == ip || u.ip.IsUnspecified() || ip.IsUnspecified() {
					l.errorf(&rng, "Duplicate host port", "%s:%d/%s is already published by sandbox %q at %s (as %s:%d). Use another host port.", p.HostIP, p.Host, p.Protocol, u.sb, at(u.rng), u.ip, p.Host)
					break
				}
			}
			seen[key] = append(seen[key], portUse{ip: ip, sb: name, rng: rng})
		}
	}
}

// sandboxObject builds the sandbox.* object once, after phase 1.
func (l *loader) sandboxObject() cty.Value {
	m := make(map[string]cty.Value, len(l.sbxNames))
	for _, name := range l.sbxNames {
		sb := l.sbx[name]
		ports := make(map[string]cty.Value, len(sb.out.Ports))
		for _, p := range sb.out.Ports {
			k := fmt.Sprint(p.Guest)
			if _, dup := ports[k]; !dup {
				ports[k] = cty.NumberIntVal(int64(p.Host))
			}
		}
		attrs := map[string]cty.Value{"name": cty.StringVal(name)}
		if len(ports) == 0 {
			attrs["ports"] = cty.MapValEmpty(cty.Number)
		} else {
			attrs["ports"] = cty.MapVal(ports)
		}
		if sb.out.Network.IP.IsValid() {
			attrs["ip"] = cty.StringVal(sb.out.Network.IP.String())
		}
		m[name] = cty.ObjectVal(attrs)
	}
	return cty.ObjectVal(m)
}
