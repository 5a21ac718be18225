// Package microsandbox turns a microsandbox project file (the YAML "Sandboxfile" of
// zerocore-ai/microsandbox: sandboxes with image, memory, cpus, volumes, ports, envs,
// depends_on, workdir, shell, scripts and scope, and groups with subnets) into an sbx
// Sandboxfile. Keys without an equivalent are listed in Notes, never dropped silently.
package microsandbox

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/sandboxfile"
	"github.com/sbx-dev/sbx/lang/imageref"
)

// Option configures Import.
type Option func(*options) error

type options struct {
	outDir string
}

// WithOutputDir names the directory the Sandboxfile is written to: host paths are written
// relative to it. The default is the directory of the microsandbox file.
func WithOutputDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("output directory must not be empty")
		}
		o.outDir = dir
		return nil
	}
}

// Result is an imported Sandboxfile and what could not be carried over.
type Result struct {
	File  *sandboxfile.File
	Notes []convert.Note
}

// Bytes is the Sandboxfile's text.
func (r *Result) Bytes() []byte { return r.File.Bytes() }

// ErrNothingUsable is returned (wrapped) when no sandbox came out; the Result's notes say why.
var ErrNothingUsable = errors.New("nothing to import")

// Import reads and converts the microsandbox file at path.
func Import(path string, opts ...Option) (*Result, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := convert.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read microsandbox file: %w", err)
	}
	return ImportBytes(abs, data, opts...)
}

// ImportBytes converts a microsandbox file given as data; name is used in messages, and its
// directory is where relative host paths start.
func ImportBytes(name string, data []byte, opts ...Option) (*Result, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	if o.outDir == "" {
		o.outDir = filepath.Dir(abs)
	}
	if o.outDir, err = filepath.Abs(o.outDir); err != nil {
		return nil, err
	}
	base := filepath.Base(abs)
	if len(data) > convert.MaxInputSize {
		return nil, fmt.Errorf("read microsandbox file: %s: %w", base, convert.ErrTooLarge)
	}
	if err := convert.CheckYAML(data, base); err != nil {
		return nil, fmt.Errorf("load %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("load %s: %w", base, err)
	}
	var file msFile
	if len(doc.Content) > 0 {
		if err := doc.Content[0].Decode(&file); err != nil {
			return nil, fmt.Errorf("load %s: %s; see microsandbox's Sandboxfile reference for the types", base, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	c := &converter{dir: filepath.Dir(abs), outDir: o.outDir, name: base}
	c.unknownKeys(&doc)
	return c.convert(&file)
}

// The microsandbox file, as far as sbx reads it. Unknown keys are found on the YAML tree.
type msFile struct {
	Meta      yaml.Node            `yaml:"meta"`
	Modules   yaml.Node            `yaml:"modules"`
	Builds    map[string]yaml.Node `yaml:"builds"`
	Sandboxes map[string]*msSandbox
	Groups    map[string]*msGroup
}

type msSandbox struct {
	Version   string                     `yaml:"version"`
	Meta      yaml.Node                  `yaml:"meta"`
	Image     string                     `yaml:"image"`
	Memory    *float64                   `yaml:"memory"`
	CPUs      *float64                   `yaml:"cpus"`
	Volumes   []string                   `yaml:"volumes"`
	Ports     []string                   `yaml:"ports"`
	Envs      []string                   `yaml:"envs"`
	Rlimits   []string                   `yaml:"rlimits"`
	Groups    map[string]*msSandboxGroup `yaml:"groups"`
	DependsOn []string                   `yaml:"depends_on"`
	Workdir   string                     `yaml:"workdir"`
	Shell     string                     `yaml:"shell"`
	Scripts   map[string]string          `yaml:"scripts"`
	Command   []string                   `yaml:"command"`
	Imports   map[string]string          `yaml:"imports"`
	Exports   map[string]string          `yaml:"exports"`
	Scope     string                     `yaml:"scope"`
}

type msSandboxGroup struct {
	Volumes map[string]string `yaml:"volumes"`
	Network *struct {
		IP       string `yaml:"ip"`
		Hostname string `yaml:"hostname"`
	} `yaml:"network"`
}

type msGroup struct {
	Version string    `yaml:"version"`
	Meta    yaml.Node `yaml:"meta"`
	Network *struct {
		Subnet string `yaml:"subnet"`
	} `yaml:"network"`
	Volumes map[string]string `yaml:"volumes"`
}

var (
	topKeys     = []string{"meta", "modules", "builds", "sandboxes", "groups"}
	sandboxKeys = []string{"version", "meta", "image", "memory", "cpus", "volumes", "ports", "envs", "rlimits", "groups", "depends_on", "workdir", "shell", "scripts", "command", "imports", "exports", "scope"}
	groupKeys   = []string{"version", "meta", "network", "volumes"}
)

type converter struct {
	dir, outDir, name string
	notes             []convert.Note
	names             map[string]string
	groups            map[string]netip.Prefix
	groupNames        map[string]string
}

func (c *converter) note(subject, key, format string, args ...any) {
	c.notes = append(c.notes, convert.Note{Subject: subject, Key: key, Message: fmt.Sprintf(format, args...)})
}

// unknownKeys notes every key microsandbox itself does not define.
func (c *converter) unknownKeys(doc *yaml.Node) {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		switch {
		case !contains(topKeys, k):
			c.note("", k, "not a microsandbox key (line %d): ignored", top.Content[i].Line)
		case (k == "sandboxes" || k == "groups") && v.Kind == yaml.MappingNode:
			allowed := sandboxKeys
			if k == "groups" {
				allowed = groupKeys
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				item := v.Content[j+1]
				if item.Kind != yaml.MappingNode {
					continue
				}
				for m := 0; m+1 < len(item.Content); m += 2 {
					if key := item.Content[m].Value; !contains(allowed, key) {
						c.note(v.Content[j].Value, key, "not a microsandbox key (line %d): ignored", item.Content[m].Line)
					}
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *converter) convert(f *msFile) (*Result, error) {
	out := &sandboxfile.File{}
	if !f.Meta.IsZero() {
		c.note("", "meta", "no equivalent: write it as comments")
	}
	if !f.Modules.IsZero() {
		c.note("", "modules", "no equivalent in sbx")
	}
	for _, b := range sortedKeys(f.Builds) {
		c.note("", "builds."+b, "sbx does not build images: build it elsewhere and name the image")
	}
	// Groups: one network each, with its subnet or one chosen here.
	c.groups = map[string]netip.Prefix{}
	c.groupNames = map[string]string{}
	var taken []netip.Prefix
	gnames := sortedKeys(f.Groups)
	for _, g := range gnames {
		if grp := f.Groups[g]; grp != nil && grp.Network != nil && grp.Network.Subnet != "" {
			p, err := netip.ParsePrefix(grp.Network.Subnet)
			if err != nil || !p.Addr().Is4() {
				c.note(g, "network.subnet", "%q is not an IPv4 subnet: sbx chooses one", grp.Network.Subnet)
				continue
			}
			c.groups[g] = p.Masked()
			taken = append(taken, p.Masked())
		}
	}
	next := 0
	for _, g := range gnames {
		grp := f.Groups[g]
		if _, ok := c.groups[g]; !ok {
			for ; next < 256; next++ {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 89, byte(next), 0}), 24)
				if !overlaps(p, taken) {
					c.groups[g] = p
					next++
					break
				}
			}
		}
		n := sandboxfile.Name(g, "net-")
		c.groupNames[g] = n
		if n != g {
			c.note(g, "name", "renamed to %q: network names are letters, digits, '_' and '-'", n)
		}
		if grp != nil && len(grp.Volumes) > 0 {
			c.note(g, "volumes", "group volumes have no equivalent: mount a host directory in each sandbox")
		}
		out.Networks = append(out.Networks, &sandboxfile.Network{Name: n, Subnet: c.groups[g].String()})
	}
	snames := sortedKeys(f.Sandboxes)
	c.names = map[string]string{}
	used := map[string]bool{}
	var kept []string
	for _, s := range snames {
		sb := f.Sandboxes[s]
		if sb == nil || !validImage(imageRef(sb.Image)) {
			img := ""
			if sb != nil {
				img = sb.Image
			}
			c.note(s, "image", "%q is not an image sbx can use: the sandbox is left out", img)
			continue
		}
		n := sandboxfile.Name(s, "s-")
		for i := 2; used[n]; i++ {
			n = fmt.Sprintf("%s-%d", sandboxfile.Name(s, "s-"), i)
		}
		used[n] = true
		c.names[s] = n
		if n != s {
			c.note(s, "name", "renamed to %q: sandbox names are letters, digits, '_' and '-', starting with a letter or '_'", n)
		}
		kept = append(kept, s)
	}
	for _, s := range kept {
		out.Sandboxes = append(out.Sandboxes, c.sandbox(s, f.Sandboxes[s]))
	}
	convert.SortNotes(c.notes)
	out.Header = []string{
		"Imported from " + c.rel(filepath.Join(c.dir, c.name)) + " (microsandbox) by 'sbx import microsandbox'.",
		"Review it, then run 'sbx validate' and 'sbx plan'.",
	}
	if len(c.notes) > 0 {
		out.Header = append(out.Header, "", "Not carried over, or changed on the way:")
		for _, n := range c.notes {
			out.Header = append(out.Header, "  "+n.String())
		}
	}
	res := &Result{File: out, Notes: c.notes}
	if len(out.Sandboxes) == 0 {
		return res, fmt.Errorf("%s: %w: it declares no usable sandboxes", c.name, ErrNothingUsable)
	}
	return res, nil
}

func (c *converter) sandbox(name string, s *msSandbox) *sandboxfile.Sandbox {
	sb := &sandboxfile.Sandbox{Name: c.names[name], Image: imageRef(s.Image)}
	if strings.HasPrefix(sb.Image, "dir:") {
		sb.Image = "dir:" + c.rel(c.abs(strings.TrimPrefix(sb.Image, "dir:")))
	}
	if s.Memory != nil {
		if mib := int64(math.Ceil(*s.Memory)); mib >= 1 {
			sb.Memory = sandboxfile.Memory(mib)
		} else {
			c.note(name, "memory", "%v MiB is not a size: left at sbx's default", *s.Memory)
		}
	}
	if s.CPUs != nil {
		n := int(math.Ceil(*s.CPUs - 1e-9))
		if n >= 1 && n <= 255 {
			sb.CPUs = n
			if float64(n) != *s.CPUs {
				sb.Comments = append(sb.Comments, fmt.Sprintf("microsandbox gave it %g CPUs; a sandbox has whole vCPUs.", *s.CPUs))
			}
		} else {
			c.note(name, "cpus", "%v is out of range: left at sbx's default", *s.CPUs)
		}
	}
	for i, v := range s.Volumes {
		host, guest, ok := strings.Cut(v, ":")
		if !ok {
			guest = host
		}
		if host == "" || !strings.HasPrefix(guest, "/") {
			c.note(name, fmt.Sprintf("volumes[%d]", i), "%q: the guest path must be absolute: left out", v)
			continue
		}
		if why := convert.SensitiveHostPath(c.abs(host), c.dir); why != "" {
			c.note(name, fmt.Sprintf("volumes[%d]", i), "%s not mounted: %s", host, why)
			continue
		}
		sb.Mounts = append(sb.Mounts, &sandboxfile.Mount{Source: c.rel(c.abs(host)), Target: guest})
	}
	for i, p := range s.Ports {
		host, guest, ok := strings.Cut(p, ":")
		if !ok {
			guest = host
		}
		h, err1 := strconv.Atoi(strings.TrimSpace(host))
		g, err2 := strconv.Atoi(strings.TrimSpace(guest))
		if err1 != nil || err2 != nil || h < 1 || h > 65535 || g < 1 || g > 65535 {
			c.note(name, fmt.Sprintf("ports[%d]", i), "%q is not HOST:GUEST port numbers: left out", p)
			continue
		}
		sb.Ports = append(sb.Ports, &sandboxfile.Port{Host: h, Guest: g})
	}
	for i, e := range s.Envs {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsRune(k, 0) {
			c.note(name, fmt.Sprintf("envs[%d]", i), "%q is not KEY=VALUE: left out", e)
			continue
		}
		if sb.Env == nil {
			sb.Env = map[string]string{}
		}
		sb.Env[k] = v
	}
	for i, r := range s.Rlimits {
		k, v, ok := strings.Cut(r, "=")
		k = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(k)), "RLIMIT_")
		if !ok || !contains(rlimitNames, k) || !validLimit(v) {
			c.note(name, fmt.Sprintf("rlimits[%d]", i), "%q is not RLIMIT_NAME=SOFT:HARD: left out", r)
			continue
		}
		if sb.Rlimits == nil {
			sb.Rlimits = map[string]string{}
		}
		sb.Rlimits[k] = v
	}
	for _, d := range s.DependsOn {
		if t, ok := c.names[d]; ok {
			sb.DependsOn = append(sb.DependsOn, t)
		} else {
			c.note(name, "depends_on", "%q is not an imported sandbox: dropped", d)
		}
	}
	sort.Strings(sb.DependsOn)
	if s.Workdir != "" {
		if strings.HasPrefix(s.Workdir, "/") {
			sb.Workdir = s.Workdir
		} else {
			c.note(name, "workdir", "%q is not an absolute path: left out", s.Workdir)
		}
	}
	c.process(name, s, sb)
	c.network(name, s, sb)
	if !s.Meta.IsZero() {
		c.note(name, "meta", "no equivalent: write it as comments")
	}
	if s.Version != "" {
		c.note(name, "version", "no equivalent in sbx")
	}
	if len(s.Imports) > 0 {
		c.note(name, "imports", "no equivalent: mount the files instead")
	}
	if len(s.Exports) > 0 {
		c.note(name, "exports", "no equivalent: mount a host directory to collect them")
	}
	return sb
}

// process maps what microsandbox runs: the start script through the shell, else command,
// else the shell. microsandbox runs it in place of the image's entrypoint, so it becomes
// sbx's entrypoint with an empty command.
func (c *converter) process(name string, s *msSandbox, sb *sandboxfile.Sandbox) {
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	switch start, ok := s.Scripts["start"]; {
	case ok:
		sb.Entrypoint, sb.Command = []string{shell, "-c", start}, []string{}
	case len(s.Command) > 0:
		sb.Entrypoint, sb.Command = s.Command, []string{}
	case s.Shell != "":
		sb.Entrypoint, sb.Command = []string{s.Shell}, []string{}
		c.note(name, "shell", "microsandbox opens %s interactively; a sandbox has no terminal at start: use sbx shell %s", s.Shell, sb.Name)
	}
	for _, k := range sortedKeys(s.Scripts) {
		if k != "start" {
			c.note(name, "scripts."+k, "sbx has no named scripts: run it with sbx exec %s %s -c '...'", sb.Name, shell)
		}
	}
}

func (c *converter) network(name string, s *msSandbox, sb *sandboxfile.Sandbox) {
	scope := strings.ToLower(s.Scope)
	switch scope {
	case "", "none", "group", "public", "any":
	default:
		c.note(name, "scope", "%q is not a scope (none, group, public, any): sbx's default public is used", s.Scope)
		scope = ""
	}
	att := &sandboxfile.NetworkAttach{Scope: scope}
	groups := sortedKeys(s.Groups)
	for i, g := range groups {
		gn, ok := c.groupNames[g]
		if !ok {
			c.note(name, "groups."+g, "no group %q is declared: left out", g)
			continue
		}
		if att.Group != "" {
			c.note(name, "groups."+g, "a sandbox is in one group in sbx; it stays in %q", att.Group)
			continue
		}
		if scope == "none" {
			c.note(name, "groups."+g, "scope none has no network at all: the group is left out")
			continue
		}
		att.Group = gn
		if sg := s.Groups[groups[i]]; sg != nil && sg.Network != nil {
			if sg.Network.IP != "" {
				ip, err := netip.ParseAddr(sg.Network.IP)
				if err != nil || !c.groups[g].Contains(ip) {
					c.note(name, "groups."+g+".network.ip", "%s is not in %s: sbx allocates one", sg.Network.IP, c.groups[g])
				} else {
					att.IP = ip.String()
				}
			}
			if sg.Network.Hostname != "" {
				c.note(name, "groups."+g+".network.hostname", "no equivalent: use the address (sandbox.%s.ip)", sb.Name)
			}
		}
		if sg := s.Groups[groups[i]]; sg != nil && len(sg.Volumes) > 0 {
			c.note(name, "groups."+g+".volumes", "group volumes have no equivalent: mount a host directory")
		}
	}
	if scope == "group" && att.Group == "" {
		c.note(name, "scope", "group without a group to be in: scope none instead, which reaches nothing either")
		att.Scope = "none"
	}
	if att.Scope == "" && att.Group == "" {
		return
	}
	sb.Network = att
}

// imageRef maps microsandbox's image, a reference or a path to a root file system.
func imageRef(s string) string {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
		return "dir:" + s
	}
	return s
}

func validImage(s string) bool {
	_, err := imageref.Parse(s)
	return err == nil
}

var rlimitNames = []string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}

func validLimit(v string) bool {
	soft, hard, ok := strings.Cut(v, ":")
	if !ok {
		hard = soft
	}
	for _, x := range []string{soft, hard} {
		if x == "unlimited" {
			continue
		}
		if _, err := strconv.ParseUint(x, 10, 64); err != nil {
			return false
		}
	}
	return true
}

func (c *converter) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

func (c *converter) rel(p string) string {
	r, err := filepath.Rel(c.outDir, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	if r == "." {
		return "."
	}
	return "./" + filepath.ToSlash(r)
}

func overlaps(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
