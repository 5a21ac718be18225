package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// marking is the type of the cty marks lang puts on values.
type marking string

// sensitiveMark marks cty values that derive from a variable declared sensitive; marks are
// removed before values reach the Config, where Sandbox.Sensitive lists the affected fields.
const sensitiveMark = marking("sensitive")

// Evaluation stages: what an expression may reference.
const (
	stageBase     = 0 // var, path, locals of stage 0
	stageNetworks = 1 // + network.*, locals of stage 1
	stageAll      = 2 // + sandbox.*, every local
)

type loader struct {
	cfg     *Config
	opts    options
	env     map[string]string
	realDir string
	diags   hcl.Diagnostics
	funcs   map[string]function.Function
	read    map[string]bool

	project   *hcl.Block
	vars      map[string]*variable
	varOrder  []*variable
	locals    map[string]*local
	localList []*local // declaration order
	topo      []*local // dependencies first
	networks  map[string]*netDecl
	netNames  []string
	volumes   map[string]*Volume
	volNames  []string                         // sorted
	named     map[string]map[string]*hcl.Block // block type -> name -> first block, for duplicates
	sbx       map[string]*sbDecl
	sbxNames  []string // sorted
	ctx       *hcl.EvalContext
	schemas   struct{ sandbox *hcl.BodySchema }
	travs     map[hclsyntax.Expression][]hcl.Traversal
	secrets   []string // values of sensitive variables, scrubbed from diagnostics
	rules     []hostRule
	allow     []string // allow_host_paths, symlinks followed
}

// Load reads, evaluates and validates the Sandboxfile at path (relative paths are relative to
// the working directory, see WithCwd). It always returns a Config with File, Dir and Sources
// set, so that callers can render the diagnostics; the rest of the Config is only meaningful
// when the diagnostics have no errors.
//
// Evaluation is linear in the number of sandboxes: variables, then locals and networks, then
// every sandbox's port and network blocks (which may not refer to sandbox.*), address
// allocation and the sandbox.* objects built once, then every other attribute.
func Load(path string, opts ...Option) (*Config, hcl.Diagnostics) {
	cfg := &Config{Sources: make(map[string]*hcl.File)}
	l := &loader{cfg: cfg, read: make(map[string]bool), travs: make(map[hclsyntax.Expression][]hcl.Traversal)}
	for _, o := range opts {
		if err := o(&l.opts); err != nil {
			l.errorf(nil, "Invalid option", "%s", sentence(err))
		}
	}
	if l.opts.cwd == "" {
		if wd, err := os.Getwd(); err == nil {
			l.opts.cwd = wd
		}
	}
	if abs, err := filepath.Abs(l.opts.cwd); err == nil {
		l.opts.cwd = abs
	}
	// A relative Sandboxfile path is relative to the working directory given by WithCwd.
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(l.opts.cwd, abs)
	}
	abs = filepath.Clean(abs)
	cfg.File, cfg.Dir = abs, filepath.Dir(abs)
	cfg.Project.Name = defaultProjectName(filepath.Base(cfg.Dir))
	if !l.opts.environSet {
		l.opts.environ = os.Environ()
	}
	l.env = make(map[string]string, len(l.opts.environ))
	for _, kv := range l.opts.environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			l.env[k] = v
		}
	}
	l.realDir = cfg.Dir
	if r, err := filepath.EvalSymlinks(cfg.Dir); err == nil {
		l.realDir = r
	}
	if l.diags.HasErrors() {
		return cfg, l.diags
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		l.errorf(nil, "Cannot read Sandboxfile", "%s. Run sbx in a directory with a Sandboxfile, pass -f PATH, or create one with sbx init.", err)
		return cfg, l.diags
	}
	file, diags := hclsyntax.ParseConfig(src, abs, hcl.InitialPos)
	if file != nil {
		cfg.Sources[abs] = file
	}
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cfg, l.diags
	}
	l.load(file)
	cfg.ReadFiles = sortedKeys(l.read)
	l.scrubSecrets()
	sortDiags(l.diags)
	return cfg, l.diags
}

func (l *loader) load(file *hcl.File) {
	content, diags := file.Body.Content(rootSchema())
	l.diags = append(l.diags, diags...)
	l.funcs = l.functions()
	l.schemas.sandbox = sandboxSchema()
	l.declare(content)

	l.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"path": cty.ObjectVal(map[string]cty.Value{
				"root": cty.StringVal(l.cfg.Dir),
				"cwd":  cty.StringVal(l.opts.cwd),
			}),
			"network": cty.DynamicVal,
			"volume":  cty.DynamicVal,
			"sandbox": cty.DynamicVal,
			"local":   cty.DynamicVal,
		},
		Functions: l.funcs,
	}
	l.ctx.Variables["volume"] = l.volumeObject()
	l.evalVariables()
	l.ctx.Variables["var"] = l.varObject()
	l.analyzeLocals()

	l.evalLocals(stageBase)
	l.ctx.Variables["local"] = l.localObject()
	l.decodeProject()
	l.rules = l.hostRules()
	l.evalNetworks()
	l.ctx.Variables["network"] = l.networkObject()
	l.evalLocals(stageNetworks)
	l.ctx.Variables["local"] = l.localObject()

	for _, n := range l.sbxNames {
		l.phase1(l.sbx[n])
	}
	l.allocateIPs()
	l.checkPorts()
	l.ctx.Variables["sandbox"] = l.sandboxObject()
	l.evalLocals(stageAll)
	l.ctx.Variables["local"] = l.localObject()
	for _, n := range l.sbxNames {
		l.phase2(l.sbx[n])
	}
	l.buildEdges()

	for _, n := range l.netNames {
		l.cfg.Networks = append(l.cfg.Networks, l.networks[n].out)
	}
	for _, n := range l.volNames {
		l.cfg.Volumes = append(l.cfg.Volumes, l.volumes[n])
	}
	for _, n := range l.sbxNames {
		sb := l.sbx[n]
		sort.Strings(sb.out.Sensitive)
		sb.out.Sensitive = compactStrings(sb.out.Sensitive)
		l.cfg.Sandboxes = append(l.cfg.Sandboxes, sb.out)
	}
}

// declare collects the top-level blocks and reports duplicates.
func (l *loader) declare(content *hcl.BodyContent) {
	l.vars = make(map[string]*variable)
	l.locals = make(map[string]*local)
	l.networks = make(map[string]*netDecl)
	l.volumes = make(map[string]*Volume)
	l.sbx = make(map[string]*sbDecl)
	l.named = make(map[string]map[string]*hcl.Block)
	for _, b := range content.Blocks {
		switch b.Type {
		case "project":
			if l.project != nil {
				l.errorf(&b.DefRange, "Duplicate project block", "A Sandboxfile has at most one project block; the first one is at %s.", at(l.project.DefRange))
				continue
			}
			l.project = b
		case "variable":
			if name, ok := l.blockName(b); ok {
				v := &variable{name: name, block: b}
				l.vars[name] = v
				l.varOrder = append(l.varOrder, v)
			}
		case "locals":
			l.declareLocals(b)
		case "network":
			if name, ok := l.blockName(b); ok {
				l.networks[name] = &netDecl{block: b, out: &Network{Name: name, Range: b.DefRange}}
				l.netNames = append(l.netNames, name)
			}
		case "volume":
			if name, ok := l.blockName(b); ok {
				_, diags := b.Body.Content(volumeSchema())
				l.diags = append(l.diags, diags...)
				l.volumes[name] = &Volume{Name: name, Range: b.DefRange}
				l.volNames = append(l.volNames, name)
			}
		case "sandbox":
			name, ok := l.blockName(b)
			body, isSyntax := b.Body.(*hclsyntax.Body)
			if !ok || !isSyntax {
				continue
			}
			l.sbx[name] = &sbDecl{block: b, body: body, out: &Sandbox{
				Name: name, CPUs: 1, MemoryMiB: 512, Pids: DefaultPids, Restart: RestartNo, StopTimeout: defaultStopTimeout,
				Network: NetworkSpec{Scope: ScopePublic}, Range: b.DefRange,
			}}
			l.sbxNames = append(l.sbxNames, name)
		}
	}
	sort.Strings(l.netNames)
	sort.Strings(l.volNames)
	sort.Strings(l.sbxNames)
}

// blockName checks the label of a variable, network, volume or sandbox block: a valid name,
// and the first block of its type with it.
func (l *loader) blockName(b *hcl.Block) (string, bool) {
	name := b.Labels[0]
	if !validName(name) {
		l.errorf(&b.LabelRanges[0], "Invalid "+b.Type+" name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter or underscore, at most 63 characters.", name)
		return "", false
	}
	if l.named[b.Type] == nil {
		l.named[b.Type] = make(map[string]*hcl.Block)
	}
	if p := l.named[b.Type][name]; p != nil {
		l.errorf(&b.DefRange, "Duplicate "+b.Type, "A %s named %q was already declared at %s. Each %s needs a unique name.", b.Type, name, at(p.DefRange), b.Type)
		return "", false
	}
	l.named[b.Type][name] = b
	return name, true
}

// declareLocals collects the values of one locals block.
func (l *loader) declareLocals(b *hcl.Block) {
	attrs, diags := b.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	for _, a := range sortedAttrs(attrs) {
		if prev, ok := l.locals[a.Name]; ok {
			l.errorf(&a.NameRange, "Duplicate local value", "A local value named %q was already defined at %s. Local value names must be unique.", a.Name, at(prev.attr.NameRange))
			continue
		}
		lc := &local{name: a.Name, attr: a, value: cty.DynamicVal}
		l.locals[a.Name] = lc
		l.localList = append(l.localList, lc)
	}
}

// volumeObject is the volume.* object: volume.NAME.name is NAME.
func (l *loader) volumeObject() cty.Value {
	m := make(map[string]cty.Value, len(l.volNames))
	for _, name := range l.volNames {
		m[name] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name)})
	}
	return cty.ObjectVal(m)
}

func (l *loader) decodeProject() {
	if l.project == nil {
		return
	}
	c, diags := l.project.Body.Content(projectSchema())
	l.diags = append(l.diags, diags...)
	l.cfg.Project.Range = l.project.DefRange
	if s, ok := l.str(c.Attributes["name"], stageBase, nil, ""); ok {
		if !validProjectName(s) {
			r := c.Attributes["name"].Expr.Range()
			l.errorf(&r, "Invalid project name", "%q is not a valid project name: use 1 to 63 letters, digits, dots, underscores and dashes, starting with a letter or a digit. It names the project's networks, cgroups and records on this machine.", s)
		} else {
			l.cfg.Project.Name = s
		}
	}
	if s, ok := l.str(c.Attributes["driver"], stageBase, nil, ""); ok {
		if ValidDriver(s) {
			l.cfg.Project.Driver = s
		} else {
			r := c.Attributes["driver"].Expr.Range()
			l.errorf(&r, "Invalid driver", "Driver %q is not known; use \"krun\" (libkrun microVMs, the default) or \"ns\" (Linux namespaces).%s", s, suggest(s, DriverNames()))
		}
	}
	l.decodeAllowHostPaths(c.Attributes["allow_host_paths"])
}

// validProjectName reports whether s can name a project: host-side names (network
// interfaces, nftables tables, cgroups, directories) are made from it.
func validProjectName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// defaultProjectName makes a project name of a directory's name: characters a project name
// cannot have become dashes ("my app" is my-app), and a name with nothing usable is "project".
func defaultProjectName(base string) string {
	if validProjectName(base) {
		return base
	}
	b := []byte(strings.TrimLeft(base, "._-"))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	s := strings.TrimLeft(string(b), "._-")
	if len(s) > 63 {
		s = s[:63]
	}
	if !validProjectName(s) {
		return "project"
	}
	return s
}

// validName reports whether s can name a sandbox, network or variable: it must be usable in a
// reference (sandbox.NAME), a directory name and a host name.
func validName(s string) bool {
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

// --- diagnostics helpers ---

func (l *loader) errorf(subject *hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: subject})
}

func (l *loader) warnf(subject *hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: subject})
}

// sentence turns an error into a sentence: capitalized, ending with one punctuation mark.
func sentence(err error) string {
	s := strings.TrimSpace(err.Error())
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// sortDiags orders diagnostics by file and position, keeping the order of those without a
// subject (they come first) and of those at the same place.
func sortDiags(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		if a == nil || b == nil {
			return a == nil && b != nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// at formats a range as file:line, relative to nothing: the CLI shows absolute paths anyway.
func at(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Range, out[j].Range
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func compactStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// abs makes p absolute against the Sandboxfile's directory.
func (l *loader) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.cfg.Dir, p)
}

func (l *loader) addReadFile(p string) {
	l.read[p] = true
}
