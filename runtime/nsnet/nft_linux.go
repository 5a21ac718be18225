//go:build linux

package nsnet

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

const (
	tableName = "sbx"
	// ifnameSize is IFNAMSIZ: interface names are compared on 16 bytes.
	ifnameSize = 16
)

// firewall edits sbx's nftables tables; changes are queued on c and applied
// atomically by c.Flush.
type firewall struct {
	c            *nftables.Conn
	inet, bridge *nftables.Table
}

func newFirewall() (*firewall, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &firewall{
		c:      c,
		inet:   &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName},
		bridge: &nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName},
	}, nil
}

func (f *firewall) flush(what string) error {
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables: %s: %w", what, err)
	}
	return nil
}

func (f *firewall) chain(t *nftables.Table, name string) *nftables.Chain {
	return &nftables.Chain{Table: t, Name: name}
}

// chains lists the chains of one of sbx's tables by name.
func (f *firewall) chains(t *nftables.Table) (map[string]*nftables.Chain, error) {
	all, err := f.c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	out := map[string]*nftables.Chain{}
	for _, c := range all {
		if c.Table.Name == t.Name {
			c.Table = t
			out[c.Name] = c
		}
	}
	return out, nil
}

// ensureBase creates the tables, base chains and the public chain.
func (f *firewall) ensureBase() error {
	have, err := f.chains(f.inet)
	if err != nil {
		return err
	}
	haveBr, err := f.chains(f.bridge)
	if err != nil {
		return err
	}
	pubRules := -1
	if pub := have["public"]; pub != nil {
		rs, err := f.c.GetRules(f.inet, pub)
		if err != nil {
			return fmt.Errorf("nftables: list rules of public: %w", err)
		}
		pubRules = len(rs)
	}
	blocked := blockedRanges()
	if have["forward"] != nil && have["input"] != nil && have["postrouting"] != nil && pubRules == len(blocked)+1 && haveBr["prerouting"] != nil {
		return nil
	}
	f.c.AddTable(f.inet)
	f.c.AddTable(f.bridge)
	accept := nftables.ChainPolicyAccept
	if have["forward"] == nil {
		f.c.AddChain(&nftables.Chain{Table: f.inet, Name: "forward", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	}
	if have["input"] == nil {
		f.c.AddChain(&nftables.Chain{Table: f.inet, Name: "input", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	}
	if have["postrouting"] == nil {
		f.c.AddChain(&nftables.Chain{Table: f.inet, Name: "postrouting", Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	}
	if pubRules != len(blocked)+1 {
		// Missing, or made by an sbx with another list: rewritten in the
		// same transaction, so no packet sees it half-filled.
		pub := f.c.AddChain(&nftables.Chain{Table: f.inet, Name: "public"})
		if pubRules >= 0 {
			f.c.FlushChain(pub)
		}
		for _, p := range blocked {
			f.c.AddRule(&nftables.Rule{Table: f.inet, Chain: pub, Exprs: join(daddrIn(p), reject())})
		}
		f.c.AddRule(&nftables.Rule{Table: f.inet, Chain: pub, Exprs: verdict(expr.VerdictAccept, "")})
	}
	if haveBr["prerouting"] == nil {
		f.c.AddChain(&nftables.Chain{Table: f.bridge, Name: "prerouting", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &accept})
	}
	return f.flush("create table inet sbx and bridge sbx")
}

func fromChain(br string) string { return "from-" + br }
func toChain(br string) string   { return "to-" + br }
func inChain(br string) string   { return "in-" + br }

// networkChain reports whether a chain is a per-network chain, and of which bridge.
func networkChain(name string) (bridge string, ok bool) {
	for _, p := range [...]string{"from-", "to-", "in-"} {
		if b, ok := strings.CutPrefix(name, p); ok && strings.HasPrefix(b, bridgePrefix) {
			return b, true
		}
	}
	return "", false
}

// ensureNetwork adds the chains of a network's bridge and the base chains'
// jumps to them, unless they are there.
func (f *firewall) ensureNetwork(project, network, br string) error {
	have, err := f.chains(f.inet)
	if err != nil {
		return err
	}
	if have[fromChain(br)] != nil {
		return nil
	}
	tag := tagData(networkTag(project, network))
	from := f.c.AddChain(f.chain(f.inet, fromChain(br)))
	to := f.c.AddChain(f.chain(f.inet, toChain(br)))
	in := f.c.AddChain(f.chain(f.inet, inChain(br)))
	add := func(c *nftables.Chain, e ...[]expr.Any) {
		f.c.AddRule(&nftables.Rule{Table: f.inet, Chain: c, Exprs: join(e...), UserData: tag})
	}
	// Sandboxes have no IPv6: whatever IPv6 they send through the host is
	// rejected (the bridge rules drop it before, this holds should they
	// not). Per-sandbox rules go before it, so a later IPv6 rule for a
	// sandbox of scope any can accept it.
	add(from, ipv6(), reject())
	add(in, ipv6(), reject())
	if network != DefaultNetwork {
		// Members of a group reach each other. Bridged traffic only gets
		// here when br_netfilter is loaded; the default network's ports are
		// isolated and it has no such rule, so nothing is routed back into it.
		add(from, ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictAccept, ""))
	}
	add(from, reject())
	add(to, ctReply(), verdict(expr.VerdictAccept, ""))
	add(to, verdict(expr.VerdictDrop, ""))
	add(in, ctReply(), verdict(expr.VerdictAccept, ""))
	add(in, reject())
	// from-B must come before to-B: traffic inside a group matches both.
	add(f.chain(f.inet, "forward"), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictJump, fromChain(br)))
	add(f.chain(f.inet, "forward"), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictJump, toChain(br)))
	add(f.chain(f.inet, "input"), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictJump, inChain(br)))
	return f.flush("add the chains of network " + network)
}

// addSandbox adds a sandbox's rules in one transaction.
func (f *firewall) addSandbox(project, name, scope, br, veth string, ip, gw netip.Addr) error {
	tag := tagData(sandboxTag(project, name))
	pre := f.chain(f.bridge, "prerouting")
	ip4 := ip.As4()
	bridgeRule := func(e ...[]expr.Any) {
		f.c.AddRule(&nftables.Rule{Table: f.bridge, Chain: pre, Exprs: join(e...), UserData: tag})
	}
	vethIn := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, veth)
	drop := verdict(expr.VerdictDrop, "")
	bridgeRule(vethIn, protocol(expr.CmpOpEq, unix.ETH_P_IP), load(expr.PayloadBaseNetworkHeader, 12, 4), cmp(expr.CmpOpNeq, ip4[:]), drop)
	// The sender's protocol address of an Ethernet/IPv4 ARP packet is at offset 14.
	bridgeRule(vethIn, protocol(expr.CmpOpEq, unix.ETH_P_ARP), load(expr.PayloadBaseNetworkHeader, 14, 4), cmp(expr.CmpOpNeq, ip4[:]), drop)
	bridgeRule(vethIn, protocol(expr.CmpOpNeq, unix.ETH_P_IP), protocol(expr.CmpOpNeq, unix.ETH_P_ARP), drop)

	insert := func(c string, e ...[]expr.Any) {
		f.c.InsertRule(&nftables.Rule{Table: f.inet, Chain: f.chain(f.inet, c), Exprs: join(e...), UserData: tag})
	}
	outside := join(ipv4(), saddr(ip), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridgePrefix+"*"))
	switch scope {
	case ScopePublic:
		insert(fromChain(br), outside, verdict(expr.VerdictJump, "public"))
		// The DNS forwarder on the gateway (ServeDNS); for scope any the
		// rule below lets everything to the host through already.
		for _, proto := range [...]byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			insert(inChain(br), ipv4(), saddr(ip), daddr(gw), l4proto(proto), dport(dnsPort), verdict(expr.VerdictAccept, ""))
		}
	case ScopeAny:
		insert(fromChain(br), outside, verdict(expr.VerdictAccept, ""))
		insert(inChain(br), ipv4(), saddr(ip), verdict(expr.VerdictAccept, ""))
	}
	if scope == ScopePublic || scope == ScopeAny {
		f.c.AddRule(&nftables.Rule{Table: f.inet, Chain: f.chain(f.inet, "postrouting"),
			Exprs: join(outside, []expr.Any{&expr.Masq{}}), UserData: tag})
	}
	return f.flush("add the rules of sandbox " + name)
}

// taggedRule is a rule of one of sbx's tables with its tag.
type taggedRule struct {
	rule *nftables.Rule
	tag  string
}

// rules lists the rules of sbx's tables.
func (f *firewall) rules() ([]taggedRule, error) {
	var out []taggedRule
	for _, t := range [...]*nftables.Table{f.inet, f.bridge} {
		chains, err := f.chains(t)
		if err != nil {
			return nil, err
		}
		for _, c := range chains {
			rs, err := f.c.GetRules(t, c)
			if err != nil {
				return nil, fmt.Errorf("nftables: list rules of %s: %w", c.Name, err)
			}
			for _, r := range rs {
				r.Table, r.Chain = t, c
				tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
				out = append(out, taggedRule{r, tag})
			}
		}
	}
	return out, nil
}

// deleteTagged deletes the rules whose tag is tag, and the chains of the
// bridges in chainsOf, in one transaction.
func (f *firewall) deleteTagged(tags map[string]bool, chainsOf map[string]bool) error {
	rs, err := f.rules()
	if err != nil {
		return err
	}
	have, err := f.chains(f.inet)
	if err != nil {
		return err
	}
	n := 0
	for _, r := range rs {
		if tags[r.tag] {
			if _, ok := networkChain(r.rule.Chain.Name); ok && chainsOf[mustBridge(r.rule.Chain.Name)] {
				continue // flushed with its chain below
			}
			if err := f.c.DelRule(r.rule); err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
			n++
		}
	}
	for name, c := range have {
		if br, ok := networkChain(name); ok && chainsOf[br] {
			f.c.FlushChain(c)
			f.c.DelChain(c)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return f.flush("delete rules")
}

func mustBridge(chain string) string { b, _ := networkChain(chain); return b }

// dropTablesIfUnused deletes sbx's tables once no tagged rule and no
// per-network chain is left in them.
func (f *firewall) dropTablesIfUnused() error {
	rs, err := f.rules()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.tag != "" {
			return nil
		}
	}
	have, err := f.chains(f.inet)
	if err != nil {
		return err
	}
	for name := range have {
		if _, ok := networkChain(name); ok {
			return nil
		}
	}
	tables, err := f.c.ListTables()
	if err != nil {
		return fmt.Errorf("nftables: list tables: %w", err)
	}
	n := 0
	for _, t := range tables {
		if t.Name == tableName && (t.Family == nftables.TableFamilyINet || t.Family == nftables.TableFamilyBridge) {
			f.c.DelTable(t)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return f.flush("delete tables inet sbx and bridge sbx")
}

func tagData(tag string) []byte { return userdata.AppendString(nil, userdata.TypeComment, tag) }

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func load(base expr.PayloadBase, offset, n uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n}}
}

func cmp(op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: op, Register: 1, Data: data}}
}

// ifname matches an interface name; a trailing "*" matches a prefix.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	var data []byte
	if p, ok := strings.CutSuffix(name, "*"); ok {
		data = []byte(p)
	} else {
		data = make([]byte, ifnameSize)
		copy(data, name)
	}
	return join([]expr.Any{&expr.Meta{Key: key, Register: 1}}, cmp(op, data))
}

func ipv4() []expr.Any {
	return join([]expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}}, cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV4}))
}

func ipv6() []expr.Any {
	return join([]expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}}, cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV6}))
}

// protocol matches the EtherType (meta protocol) in the bridge family.
func protocol(op expr.CmpOp, ethType uint16) []expr.Any {
	return join([]expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1}}, cmp(op, binaryutil.BigEndian.PutUint16(ethType)))
}

func saddr(ip netip.Addr) []expr.Any {
	a := ip.As4()
	return join(load(expr.PayloadBaseNetworkHeader, 12, 4), cmp(expr.CmpOpEq, a[:]))
}

func daddr(ip netip.Addr) []expr.Any {
	a := ip.As4()
	return join(load(expr.PayloadBaseNetworkHeader, 16, 4), cmp(expr.CmpOpEq, a[:]))
}

// l4proto matches the transport protocol (meta l4proto).
func l4proto(p byte) []expr.Any {
	return join([]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}}, cmp(expr.CmpOpEq, []byte{p}))
}

// dport matches the destination port of TCP or UDP (th dport).
func dport(port uint16) []expr.Any {
	return join(load(expr.PayloadBaseTransportHeader, 2, 2), cmp(expr.CmpOpEq, binaryutil.BigEndian.PutUint16(port)))
}

// daddrIn matches an IPv4 or IPv6 destination in p (and the family).
func daddrIn(p netip.Prefix) []expr.Any {
	fam, off, a := ipv4(), uint32(16), p.Masked().Addr().AsSlice()
	if p.Addr().Is6() {
		fam, off = ipv6(), 24
	}
	n := uint32(len(a))
	mask := make([]byte, n)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return join(fam, load(expr.PayloadBaseNetworkHeader, off, n),
		[]expr.Any{&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)}},
		cmp(expr.CmpOpEq, a))
}

// ctReply matches ct state established,related.
func ctReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func reject() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}

func verdict(k expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k, Chain: chain}}
}

func family(t *nftables.Table) string { return familyName(t.Family) }

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	}
	return fmt.Sprint(f)
}
