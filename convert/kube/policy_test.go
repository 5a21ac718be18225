package kube

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// endpoint is a pod (with labels, in a namespace) or an address outside the cluster.
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ip        netip.Addr
}

// evaluator applies NetworkPolicies as the API documents them: a pod selected by no policy of
// a direction allows everything in it; a selected pod allows what some rule of some selecting
// policy allows (peer and port).
type evaluator struct {
	policies   []*networkingv1.NetworkPolicy // all in namespace "default"
	namespaces map[string]map[string]string  // namespace → labels
}

func matches(sel *metav1.LabelSelector, labels map[string]string) bool {
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return len(sel.MatchExpressions) == 0
}

func (ev *evaluator) peer(p networkingv1.NetworkPolicyPeer, e endpoint) bool {
	switch {
	case p.IPBlock != nil:
		cidr := netip.MustParsePrefix(p.IPBlock.CIDR)
		if !e.ip.IsValid() || !cidr.Contains(e.ip) {
			return false
		}
		for _, x := range p.IPBlock.Except {
			if netip.MustParsePrefix(x).Contains(e.ip) {
				return false
			}
		}
		return true
	case e.namespace == "":
		return false // outside the cluster: only ipBlocks select it
	case p.NamespaceSelector != nil:
		if !matches(p.NamespaceSelector, ev.namespaces[e.namespace]) {
			return false
		}
		return p.PodSelector == nil || matches(p.PodSelector, e.labels)
	default:
		return e.namespace == "default" && matches(p.PodSelector, e.labels)
	}
}

func portOK(ports []networkingv1.NetworkPolicyPort, port int, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp == proto && (p.Port == nil || p.Port.IntValue() == port) {
			return true
		}
	}
	return false
}

func (ev *evaluator) allowed(src, dst endpoint, port int, proto corev1.Protocol) bool {
	return ev.direction(src, dst, port, proto, networkingv1.PolicyTypeEgress) &&
		ev.direction(src, dst, port, proto, networkingv1.PolicyTypeIngress)
}

func (ev *evaluator) direction(src, dst endpoint, port int, proto corev1.Protocol, dir networkingv1.PolicyType) bool {
	subject, other := src, dst
	if dir == networkingv1.PolicyTypeIngress {
		subject, other = dst, src
	}
	if subject.namespace != "default" {
		return true
	}
	selected := false
	for _, np := range ev.policies {
		if !matches(&np.Spec.PodSelector, subject.labels) {
			continue
		}
		applies := false
		for _, t := range np.Spec.PolicyTypes {
			applies = applies || t == dir
		}
		if !applies {
			continue
		}
		selected = true
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range np.Spec.Egress {
				if portOK(r.Ports, port, proto) && ev.anyPeer(r.To, other) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Ingress {
				if portOK(r.Ports, port, proto) && ev.anyPeer(r.From, other) {
					return true
				}
			}
		}
	}
	return !selected
}

func (ev *evaluator) anyPeer(peers []networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if ev.peer(p, e) {
			return true
		}
	}
	return false
}

// TestNetworkPolicySemantics exports the networks example and asks the evaluator which
// sandbox may reach which: the scopes as sbx enforces them on one machine.
func TestNetworkPolicySemantics(t *testing.T) {
	cfg := load(t, "../../examples/networks/Sandboxfile")
	res, err := Export(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := &evaluator{namespaces: map[string]map[string]string{
		"default":     {"kubernetes.io/metadata.name": "default"},
		"kube-system": {"kubernetes.io/metadata.name": "kube-system"},
	}}
	pods := map[string]endpoint{}
	addr := 10
	for _, f := range res.Files {
		for _, o := range f.Objects {
			switch x := o.Object.(type) {
			case *networkingv1.NetworkPolicy:
				ev.policies = append(ev.policies, x)
			case *corev1.Pod:
				pods[x.Name] = endpoint{x.Name, "default", x.Labels, netip.AddrFrom4([4]byte{10, 244, 0, byte(addr)})}
				addr++
			}
		}
	}
	if len(pods) != 6 {
		t.Fatalf("pods = %v", pods)
	}
	dns := endpoint{"dns", "kube-system", map[string]string{"k8s-app": "kube-dns"}, netip.MustParseAddr("10.96.0.10")}
	internet := endpoint{name: "internet", ip: netip.MustParseAddr("1.1.1.1")}
	internet6 := endpoint{name: "internet6", ip: netip.MustParseAddr("2606:4700::1111")}
	lan := endpoint{name: "lan", ip: netip.MustParseAddr("192.168.1.10")}
	cgnat := endpoint{name: "cgnat", ip: netip.MustParseAddr("100.64.0.1")}
	metadata := endpoint{name: "metadata", ip: netip.MustParseAddr("169.254.169.254")}
	evilPod := endpoint{"evil", "default", map[string]string{"app.kubernetes.io/name": "evil"}, netip.MustParseAddr("10.244.9.9")}

	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	tests := []struct {
		src, dst endpoint
		port     int
		proto    corev1.Protocol
		want     bool
	}{
		// group: the members of front reach each other on any port.
		{pods["front"], pods["app"], 9000, tcp, true},
		{pods["app"], pods["front"], 12345, tcp, true},
		// group scope: nothing outside the group, no internet.
		{pods["app"], internet, 443, tcp, false},
		{pods["app"], pods["store"], 5432, tcp, false},
		{pods["store"], pods["worker"], 8080, tcp, true},
		{pods["worker"], pods["store"], 5432, tcp, true},
		{pods["worker"], pods["front"], 80, tcp, false}, // published ports, but worker's egress is its group
		// public: the internet, never the private, link-local or CGNAT ranges.
		{pods["front"], internet, 443, tcp, true},
		{pods["front"], internet6, 443, tcp, true},
		{pods["front"], lan, 22, tcp, false},
		{pods["front"], cgnat, 80, tcp, false},
		{pods["front"], metadata, 80, tcp, false},
		{pods["front"], pods["store"], 5432, tcp, false},
		// DNS for every scope but none.
		{pods["app"], dns, 53, udp, true},
		{pods["front"], dns, 53, tcp, true},
		{pods["app"], dns, 80, tcp, false},
		{pods["batch"], dns, 53, udp, false},
		// none: nothing in or out.
		{pods["batch"], pods["store"], 5432, tcp, false},
		{pods["tools"], pods["batch"], 80, tcp, false},
		{pods["batch"], internet, 443, tcp, false},
		// any: unrestricted out, but others still decide what they accept: published ports only.
		{pods["tools"], internet, 443, tcp, true},
		{pods["tools"], lan, 22, tcp, true},
		{pods["tools"], pods["front"], 80, tcp, true},
		{pods["tools"], pods["front"], 8080, tcp, false},
		{pods["tools"], pods["app"], 9000, tcp, false},
		{pods["tools"], pods["store"], 5432, tcp, false},
		{evilPod, pods["tools"], 80, tcp, true},
		// a stranger reaches published ports, nothing else.
		{evilPod, pods["front"], 443, tcp, true},
		{evilPod, pods["app"], 9000, tcp, false},
	}
	for _, tc := range tests {
		if got := ev.allowed(tc.src, tc.dst, tc.port, tc.proto); got != tc.want {
			t.Errorf("%s → %s:%d/%s allowed = %v, want %v", tc.src.name, tc.dst.name, tc.port, tc.proto, got, tc.want)
		}
	}
	// reachable (which decides the init containers) agrees with the policies.
	for _, src := range cfg.Sandboxes {
		for _, dst := range cfg.Sandboxes {
			if src == dst || len(dst.Ports) == 0 && dst.Network.Group == "" {
				continue
			}
			port := 1
			if len(dst.Ports) > 0 {
				port = dst.Ports[0].Guest
			}
			if got, want := reachable(src, dst), ev.allowed(pods[src.Name], pods[dst.Name], port, tcp); got != want {
				t.Errorf("reachable(%s, %s) = %v, the policies say %v", src.Name, dst.Name, got, want)
			}
		}
	}
}
