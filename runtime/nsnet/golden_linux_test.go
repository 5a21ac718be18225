//go:build linux

package nsnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestRulesGolden pins the nftables layout of a project with a sandbox of
// each scope (runtime/nsnet/testdata/rules.golden, regenerated with -update).
func TestRulesGolden(t *testing.T) {
	requireRoot(t)
	p := "golden" // names and addresses below derive from it
	t.Cleanup(func() {
		if err := TeardownProject(context.Background(), p); err != nil {
			t.Error(err)
		}
	})
	sn := netip.MustParsePrefix("10.201.250.0/24")
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.201.250.0/24", "10.199.250.0/24"} {
		if r := overlapping(netip.MustParsePrefix(p), routes); r != "" {
			t.Skipf("the host routes %s (%s)", p, r)
		}
	}
	for _, n := range []Net{
		{Project: p, Name: "none", Scope: ScopeNone},
		{Project: p, Name: "db", Scope: ScopeGroup, Group: "backend", Subnet: sn, IP: netip.MustParseAddr("10.201.250.10")},
		{Project: p, Name: "api", Scope: ScopePublic, Group: "backend", Subnet: sn, IP: netip.MustParseAddr("10.201.250.11")},
		{Project: p, Name: "tool", Scope: ScopeAny, Group: "backend", Subnet: sn, IP: netip.MustParseAddr("10.201.250.12")},
		{Project: p, Name: "web", Scope: ScopePublic, Subnet: netip.MustParsePrefix("10.199.250.0/24")},
	} {
		if _, err := Setup(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	// A VM's tap gets the rules of a veth.
	if _, err := SetupTap(context.Background(), Net{Project: p, Name: "vm", Scope: ScopePublic, Group: "backend", Subnet: sn, IP: netip.MustParseAddr("10.201.250.13")}); err != nil {
		t.Fatal(err)
	}
	got := dumpRules(t, p)
	path := filepath.Join("testdata", "rules.golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rules differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// dumpRules renders sbx's chains in nft-like syntax: the base and shared
// chains, and the project's rules and chains, without handles.
func dumpRules(t *testing.T, project string) []byte {
	t.Helper()
	fw, err := newFirewall()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, tb := range []*nftables.Table{fw.inet, fw.bridge} {
		chains, err := fw.chains(tb)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(chains))
		for n := range chains {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, name := range names {
			c := chains[name]
			br, isNet := networkChain(name)
			if isNet && !strings.HasPrefix(br, bridgePrefix) {
				continue
			}
			rules, err := fw.c.GetRules(tb, c)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range rules {
				tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
				if tag != "" && !ownedBy(tag, project) {
					continue
				}
				line := "    " + render(r)
				if tag != "" {
					line += "  # " + tag
				}
				lines = append(lines, line)
			}
			if isNet && len(lines) == 0 {
				continue
			}
			head := fmt.Sprintf("%s %s %s", family(tb), tb.Name, name)
			if c.Hooknum != nil {
				head += fmt.Sprintf(" (%s hook %d priority %d)", c.Type, *c.Hooknum, *c.Priority)
			}
			b.WriteString(head + "\n")
			for _, l := range lines {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.Bytes()
}

// render writes a rule in something close to nft's syntax, for the
// expressions sbx uses.
func render(r *nftables.Rule) string {
	var out []string
	lhs := ""
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			lhs = map[expr.MetaKey]string{expr.MetaKeyIIFNAME: "iifname", expr.MetaKeyOIFNAME: "oifname",
				expr.MetaKeyNFPROTO: "meta nfproto", expr.MetaKeyPROTOCOL: "meta protocol", expr.MetaKeyL4PROTO: "meta l4proto"}[e.Key]
		case *expr.Payload:
			if e.Base == expr.PayloadBaseTransportHeader {
				lhs = map[uint32]string{0: "th sport", 2: "th dport"}[e.Offset]
			} else {
				lhs = map[uint32]string{12: "ip saddr", 14: "arp saddr ip", 16: "ip daddr", 24: "ip6 daddr"}[e.Offset]
			}
		case *expr.Ct:
			lhs = "ct state"
		case *expr.Bitwise:
			if lhs == "ct state" {
				lhs = "ct state & (established|related)"
			} else {
				ones := 0
				for _, m := range e.Mask {
					for i := range 8 {
						if m&(0x80>>i) != 0 {
							ones++
						}
					}
				}
				lhs += fmt.Sprintf("/%d", ones)
			}
		case *expr.Cmp:
			op := map[expr.CmpOp]string{expr.CmpOpEq: "==", expr.CmpOpNeq: "!="}[e.Op]
			out = append(out, lhs+" "+op+" "+value(lhs, e.Data))
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				out = append(out, "accept")
			case expr.VerdictDrop:
				out = append(out, "drop")
			case expr.VerdictJump:
				out = append(out, "jump "+e.Chain)
			default:
				out = append(out, fmt.Sprintf("verdict %d", e.Kind))
			}
		case *expr.Reject:
			out = append(out, "reject")
		case *expr.Masq:
			out = append(out, "masquerade")
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return strings.Join(out, " ")
}

func value(lhs string, d []byte) string {
	switch {
	case lhs == "iifname" || lhs == "oifname":
		if len(d) < ifnameSize {
			return fmt.Sprintf("%q", string(d)+"*")
		}
		return fmt.Sprintf("%q", strings.TrimRight(string(d), "\x00"))
	case lhs == "meta nfproto":
		return map[byte]string{2: "ipv4", 10: "ipv6"}[d[0]]
	case lhs == "meta l4proto":
		return map[byte]string{6: "tcp", 17: "udp"}[d[0]]
	case lhs == "th sport" || lhs == "th dport":
		return fmt.Sprint(binary.BigEndian.Uint16(d))
	case lhs == "meta protocol":
		return map[uint16]string{0x0800: "ip", 0x0806: "arp"}[binary.BigEndian.Uint16(d)]
	case strings.HasPrefix(lhs, "ct state"):
		return "0"
	case len(d) == 4:
		return netip.AddrFrom4([4]byte(d)).String()
	case len(d) == 16:
		return netip.AddrFrom16([16]byte(d)).String()
	}
	return fmt.Sprintf("%x", d)
}
