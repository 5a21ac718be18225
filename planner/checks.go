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

// checks runs the checks of a plan that depend on the machine, when m is set, for the
// sandboxes the plan would start: ports bound by other processes, mount sources that do not
// exist (any more: lang checked them when it loaded the file).
func checks(cfg *lang.Config, st *State, steps []Step, status func(string) Status, m Machine) []Problem {
	var probs []Problem

	// Duplicate host ports, duplicate addresses and addresses outside their subnet are lang's
	// to find (lang.Load reports them with their source ranges); the plan only checks what
	// depends on the machine.
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
