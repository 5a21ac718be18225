// Package sandboxfile writes Sandboxfiles: a plain model of the blocks that importers fill in,
// written through hclwrite so that the output is canonically formatted (sbx fmt --check
// passes) and every string is escaped as HCL wants it.
//
// The model holds values as they are to be written, not resolved ones: references between
// blocks (depends_on, network groups, volumes) are written as traversals.
package sandboxfile

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// File is a whole Sandboxfile.
type File struct {
	// Header holds comment lines written at the top, without the leading "# ".
	Header    []string
	Project   *Project
	Volumes   []*Volume
	Networks  []*Network
	Sandboxes []*Sandbox
}

// Project is the project block.
type Project struct {
	Name string
}

// Volume is a named volume block.
type Volume struct {
	Name     string
	Comments []string
}

// Network is a network group block.
type Network struct {
	Name     string
	Subnet   string
	Comments []string
}

// Sandbox is one sandbox block. Zero values are left out, except that a non-nil empty
// Entrypoint or Command is written as [] (an explicit override of the image's value).
type Sandbox struct {
	Name     string
	Comments []string // written above the block

	Image      string
	CPUs       int
	Memory     string
	Pids       int
	Entrypoint []string
	Command    []string
	Workdir    string
	User       string
	Env        map[string]string
	// EnvRefs holds env values that refer to other sandboxes' addresses, written as
	// templates; a key is in Env or in EnvRefs, not both.
	EnvRefs     map[string]Template
	EnvFiles    []string
	Rlimits     map[string]string // values are written as numbers when they are decimal
	Restart     string
	StopTimeout string
	DependsOn   []string // sandbox names

	Mounts  []*Mount
	Ports   []*Port
	Network *NetworkAttach
	Ready   *Ready

	// Notes are comment lines written at the end of the block (what could not be mapped here).
	Notes []string
}

// Template is a string with references to sandboxes' addresses: literal parts and, between
// them, sandbox.NAME.ip.
type Template []Part

// Part is a literal (Lit) or the address of the sandbox named IPOf.
type Part struct {
	Lit  string
	IPOf string
}

func (t Template) tokens() hclwrite.Tokens {
	toks := hclwrite.Tokens{{Type: hclsyntax.TokenOQuote, Bytes: []byte(`"`)}}
	for _, p := range t {
		if p.IPOf == "" {
			lit := hclwrite.TokensForValue(cty.StringVal(p.Lit))
			toks = append(toks, lit[1:len(lit)-1]...) // without the quotes
			continue
		}
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenTemplateInterp, Bytes: []byte("${")})
		toks = append(toks, hclwrite.TokensForTraversal(hcl.Traversal{
			hcl.TraverseRoot{Name: "sandbox"}, hcl.TraverseAttr{Name: p.IPOf}, hcl.TraverseAttr{Name: "ip"}})...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenTemplateSeqEnd, Bytes: []byte("}")})
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenCQuote, Bytes: []byte(`"`)})
}

// Mount is a mount block: a host path (Source) or a named volume (Volume).
type Mount struct {
	Source   string
	Volume   string
	Target   string
	ReadOnly bool
	Comments []string
}

// Port is a port block.
type Port struct {
	Host     int
	Guest    int
	HostIP   string
	Protocol string
	Comments []string
}

// NetworkAttach is the network block of a sandbox.
type NetworkAttach struct {
	Scope    string
	Group    string // network name
	IP       string
	Comments []string
}

// Ready is a ready block.
type Ready struct {
	TCP      int
	HTTP     string
	Log      string
	Timeout  string
	Interval string
	Comments []string
}

// Bytes writes f as a formatted Sandboxfile.
func (f *File) Bytes() []byte {
	out := hclwrite.NewEmptyFile()
	root := out.Body()
	if len(f.Header) > 0 {
		comments(root, f.Header)
		root.AppendNewline()
	}
	if f.Project != nil {
		b := root.AppendNewBlock("project", nil).Body()
		b.SetAttributeValue("name", cty.StringVal(f.Project.Name))
		root.AppendNewline()
	}
	for _, v := range f.Volumes {
		comments(root, v.Comments)
		// An empty block, written on one line as people write it: volume "data" {}
		toks := hclwrite.Tokens{{Type: hclsyntax.TokenIdent, Bytes: []byte("volume")}}
		toks = append(toks, hclwrite.TokensForValue(cty.StringVal(v.Name))...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")},
			&hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")},
			&hclwrite.Token{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")})
		root.AppendUnstructuredTokens(toks)
		root.AppendNewline()
	}
	for _, n := range f.Networks {
		comments(root, n.Comments)
		b := root.AppendNewBlock("network", []string{n.Name}).Body()
		b.SetAttributeValue("subnet", cty.StringVal(n.Subnet))
		root.AppendNewline()
	}
	for i, s := range f.Sandboxes {
		if i > 0 {
			root.AppendNewline()
		}
		comments(root, s.Comments)
		s.write(root.AppendNewBlock("sandbox", []string{s.Name}).Body())
	}
	return append(hclwrite.Format(bytes.TrimRight(out.Bytes(), "\n")), '\n')
}

func (s *Sandbox) write(b *hclwrite.Body) {
	str := func(name, v string) {
		if v != "" {
			b.SetAttributeValue(name, cty.StringVal(v))
		}
	}
	str("image", s.Image)
	if s.CPUs > 0 {
		b.SetAttributeValue("cpus", cty.NumberIntVal(int64(s.CPUs)))
	}
	str("memory", s.Memory)
	if s.Pids > 0 {
		b.SetAttributeValue("pids", cty.NumberIntVal(int64(s.Pids)))
	}
	if s.Entrypoint != nil {
		b.SetAttributeValue("entrypoint", strList(s.Entrypoint))
	}
	if s.Command != nil {
		b.SetAttributeValue("command", strList(s.Command))
	}
	str("workdir", s.Workdir)
	str("user", s.User)
	if len(s.EnvFiles) > 0 {
		b.SetAttributeValue("env_file", strList(s.EnvFiles))
	}
	if len(s.Env) > 0 || len(s.EnvRefs) > 0 {
		b.SetAttributeRaw("env", envTokens(s.Env, s.EnvRefs))
	}
	if len(s.Rlimits) > 0 {
		b.SetAttributeRaw("rlimits", objectTokens(s.Rlimits, true))
	}
	str("restart", s.Restart)
	str("stop_timeout", s.StopTimeout)
	if len(s.DependsOn) > 0 {
		elems := make([]hclwrite.Tokens, len(s.DependsOn))
		for i, d := range s.DependsOn {
			elems[i] = hclwrite.TokensForTraversal(traversal("sandbox", d))
		}
		b.SetAttributeRaw("depends_on", hclwrite.TokensForTuple(elems))
	}
	for _, m := range s.Mounts {
		b.AppendNewline()
		comments(b, m.Comments)
		mb := b.AppendNewBlock("mount", nil).Body()
		if m.Volume != "" {
			mb.SetAttributeTraversal("volume", traversal("volume", m.Volume))
		} else {
			mb.SetAttributeValue("source", cty.StringVal(m.Source))
		}
		mb.SetAttributeValue("target", cty.StringVal(m.Target))
		if m.ReadOnly {
			mb.SetAttributeValue("read_only", cty.True)
		}
	}
	for _, p := range s.Ports {
		b.AppendNewline()
		comments(b, p.Comments)
		pb := b.AppendNewBlock("port", nil).Body()
		if p.Host != 0 && p.Host != p.Guest {
			pb.SetAttributeValue("host", cty.NumberIntVal(int64(p.Host)))
		}
		pb.SetAttributeValue("guest", cty.NumberIntVal(int64(p.Guest)))
		if p.HostIP != "" {
			pb.SetAttributeValue("host_ip", cty.StringVal(p.HostIP))
		}
		if p.Protocol != "" && p.Protocol != "tcp" {
			pb.SetAttributeValue("protocol", cty.StringVal(p.Protocol))
		}
	}
	if n := s.Network; n != nil {
		b.AppendNewline()
		comments(b, n.Comments)
		nb := b.AppendNewBlock("network", nil).Body()
		if n.Scope != "" {
			nb.SetAttributeValue("scope", cty.StringVal(n.Scope))
		}
		if n.Group != "" {
			nb.SetAttributeTraversal("group", traversal("network", n.Group))
		}
		if n.IP != "" {
			nb.SetAttributeValue("ip", cty.StringVal(n.IP))
		}
	}
	if r := s.Ready; r != nil {
		b.AppendNewline()
		comments(b, r.Comments)
		rb := b.AppendNewBlock("ready", nil).Body()
		switch {
		case r.TCP != 0:
			rb.SetAttributeValue("tcp", cty.NumberIntVal(int64(r.TCP)))
		case r.HTTP != "":
			rb.SetAttributeValue("http", cty.StringVal(r.HTTP))
		case r.Log != "":
			rb.SetAttributeValue("log", cty.StringVal(r.Log))
		}
		if r.Timeout != "" {
			rb.SetAttributeValue("timeout", cty.StringVal(r.Timeout))
		}
		if r.Interval != "" {
			rb.SetAttributeValue("interval", cty.StringVal(r.Interval))
		}
	}
	if len(s.Notes) > 0 {
		b.AppendNewline()
		comments(b, s.Notes)
	}
}

// comments appends "# line" comments; an empty line is written as a bare "#".
func comments(b *hclwrite.Body, lines []string) {
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			text := "#"
			if part = strings.TrimRight(part, " \t\r"); part != "" {
				text += " " + part
			}
			b.AppendUnstructuredTokens(hclwrite.Tokens{
				{Type: hclsyntax.TokenComment, Bytes: []byte(text + "\n")},
			})
		}
	}
}

func strList(items []string) cty.Value {
	if len(items) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(items))
	for i, s := range items {
		vals[i] = cty.StringVal(s)
	}
	return cty.TupleVal(vals)
}

// objectTokens writes a map as an object constructor, keys sorted; keys that are not HCL
// identifiers are quoted. With numbers, decimal values are written as numbers.
func objectTokens(m map[string]string, numbers bool) hclwrite.Tokens {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]hclwrite.ObjectAttrTokens, len(keys))
	for i, k := range keys {
		var name hclwrite.Tokens
		if hclsyntax.ValidIdentifier(k) {
			name = hclwrite.TokensForIdentifier(k)
		} else {
			name = hclwrite.TokensForValue(cty.StringVal(k))
		}
		v := m[k]
		var val hclwrite.Tokens
		if numbers && isDecimal(v) {
			val = hclwrite.Tokens{{Type: hclsyntax.TokenNumberLit, Bytes: []byte(v)}}
		} else {
			val = hclwrite.TokensForValue(cty.StringVal(v))
		}
		attrs[i] = hclwrite.ObjectAttrTokens{Name: name, Value: val}
	}
	return hclwrite.TokensForObject(attrs)
}

// envTokens writes env: literal values and templates, keys sorted together.
func envTokens(lits map[string]string, refs map[string]Template) hclwrite.Tokens {
	keys := make([]string, 0, len(lits)+len(refs))
	for k := range lits {
		keys = append(keys, k)
	}
	for k := range refs {
		if _, dup := lits[k]; !dup {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	attrs := make([]hclwrite.ObjectAttrTokens, len(keys))
	for i, k := range keys {
		name := hclwrite.TokensForIdentifier(k)
		if !hclsyntax.ValidIdentifier(k) {
			name = hclwrite.TokensForValue(cty.StringVal(k))
		}
		val := hclwrite.TokensForValue(cty.StringVal(lits[k]))
		if t, ok := refs[k]; ok {
			val = t.tokens()
		}
		attrs[i] = hclwrite.ObjectAttrTokens{Name: name, Value: val}
	}
	return hclwrite.TokensForObject(attrs)
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func traversal(root, name string) hcl.Traversal {
	return hcl.Traversal{hcl.TraverseRoot{Name: root}, hcl.TraverseAttr{Name: name}}
}

// ValidName reports whether s can name a sandbox, network or volume: letters, digits,
// underscores and dashes, starting with a letter or underscore, at most 63 characters.
func ValidName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Name turns s into a valid name (see ValidName): other characters become '-', a name that
// does not start with a letter or underscore gets a prefix, and long names are cut.
func Name(s, prefix string) string {
	if ValidName(s) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '_', c == '-', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if out == "" || !(out[0] == '_' || out[0] >= 'a' && out[0] <= 'z' || out[0] >= 'A' && out[0] <= 'Z') {
		out = prefix + out
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

// Memory writes a size in MiB as the Sandboxfile spells it: "1GiB" when it is a whole number of
// GiB, otherwise "NMiB".
func Memory(mib int64) string {
	if mib >= 1024 && mib%1024 == 0 {
		return fmt.Sprintf("%dGiB", mib/1024)
	}
	return fmt.Sprintf("%dMiB", mib)
}
