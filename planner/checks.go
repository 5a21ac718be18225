package planner

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/sbx-dev/sbx/lang"
)

// portKey groups published ports that might collide: same host port and protocol.
type portKey struct {
	port  int
	proto string
}

type portUse struct {
	sandbox string
	index   int
	hostIP  string
}

// ipsOverlap reports whether two host IPs of the same port would collide: equal, or either a
// wildcard address, which binds every address of its family (and on Linux "::" binds IPv4 too).
func ipsOverlap(a, b string) bool {
	if a == b {
		return true
	}
	wa, wb := isWildcard(a), isWildcard(b)
	return wa || wb
}

func isWildcard(ip string) bool {
	if ip == "" {
		return true
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsUnspecified()
}

func proto(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// checks runs the static checks of a plan: those on the Sandboxfile as a whole (duplicate host
// ports, duplicate IPs, IPs outside their group's subnet) and, when m is set, those on the
// machine for the sandboxes the plan would start (ports bound by other processes, mount sources
// that do not exist).
func checks(cfg *lang.Config, st *State, steps []Step, status func(string) Status, m Machine) []Problem {
	var probs []Problem

	// Duplicate host ports across the file.
	byPort := map[portKey][]portUse{}
	for _, sb := range cfg.Sandboxes {
		for i, p := range sb.Ports {
			k := portKey{p.Host, proto(p.Protocol)}
			for _, u := range byPort[k] {
				if ipsOverlap(u.hostIP, p.HostIP) {
					probs = append(probs, Problem{Sandbox: sb.Name, Field: indexed(FieldPorts, i), Range: sb.Range, Message: fmt.Sprintf(
						"host port %s is also published by sandbox %q (ports[%d]); give one of them another host port",
						hostPort(p.HostIP, p.Host, k.proto), u.sandbox, u.index)})
					break
				}
			}
			byPort[k] = append(byPort[k], portUse{sb.Name, i, p.HostIP})
		}
	}

	// Group addresses.
	subnets := map[string]netip.Prefix{}
	for _, n := range cfg.Networks {
		subnets[n.Name] = n.Subnet
	}
	type groupIP struct {
		group string
		ip    netip.Addr
	}
	ips := map[groupIP]string{}
	for _, sb := range cfg.Sandboxes {
		nw := sb.Network
		if nw.Group == "" || !nw.IP.IsValid() {
			continue
		}
		if subnet, ok := subnets[nw.Group]; !ok {
			probs = append(probs, Problem{Sandbox: sb.Name, Field: FieldNetGroup, Range: sb.Range, Message: fmt.Sprintf("network %q is not declared; add a network %q block", nw.Group, nw.Group)})
		} else if !subnet.Contains(nw.IP) {
			probs = append(probs, Problem{Sandbox: sb.Name, Field: FieldNetIP, Range: sb.Range, Message: fmt.Sprintf("%s is outside the subnet %s of network %q; pick an address in it", nw.IP, subnet, nw.Group)})
		}
		k := groupIP{nw.Group, nw.IP}
		if other, ok := ips[k]; ok {
			probs = append(probs, Problem{Sandbox: sb.Name, Field: FieldNetIP, Range: sb.Range, Message: fmt.Sprintf("%s in network %q is also the address of sandbox %q; give each sandbox its own", nw.IP, nw.Group, other)})
		} else {
			ips[k] = sb.Name
		}
	}

	if m == nil {
		return probs
	}
	// Ports that this project's own running sandboxes hold are not "in use by another process".
	ours := map[portKey][]string{}
	for _, name := range st.Names() {
		if !status(name).Live() {
			continue
		}
		for _, p := range st.Sandboxes[name].Spec.Ports {
			k := portKey{p.Host, proto(p.Protocol)}
			ours[k] = append(ours[k], p.HostIP)
		}
	}
	for _, s := range steps {
		if s.Desired == nil {
			continue
		}
		for i, p := range s.Desired.Ports {
			k := portKey{p.Host, proto(p.Protocol)}
			if slices.ContainsFunc(ours[k], func(ip string) bool { return ipsOverlap(ip, p.HostIP) }) {
				continue
			}
			if m.PortInUse(p.HostIP, p.Host, k.proto) {
				probs = append(probs, Problem{Sandbox: s.Sandbox, Field: indexed(FieldPorts, i), Range: s.Desired.Range, Message: fmt.Sprintf(
					"host port %s is already in use by another process; stop that process or change the host port",
					hostPort(p.HostIP, p.Host, k.proto))})
			}
		}
		for i, mt := range s.Desired.Mounts {
			if mt.Volume == "" && !m.PathExists(mt.Source) { // a named volume is the runtime's to create
				src := mt.Source
				if isSensitive(indexed(FieldMounts, i), s.Desired.Sensitive) {
					src = sensitiveText
				}
				probs = append(probs, Problem{Sandbox: s.Sandbox, Field: indexed(FieldMounts, i), Range: s.Desired.Range, Message: fmt.Sprintf(
					"mount source %s does not exist; create it or fix the path", src)})
			}
		}
	}
	return probs
}

func hostPort(ip string, port int, proto string) string {
	if ip == "" {
		ip = "0.0.0.0"
	}
	return joinHostPort(ip, port) + "/" + proto
}

func joinHostPort(ip string, port int) string {
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
