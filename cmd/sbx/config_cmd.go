package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/sbx-dev/sbx/lang"
)

type configCmd struct {
	JSON bool `help:"Print the configuration as one JSON object."`
}

// Help is the detail of sbx config --help.
func (configCmd) Help() string {
	return `Variables are applied, references and defaults filled in, env_file values merged into env,
and host paths made absolute. Values derived from a variable declared sensitive are shown as
"(sensitive)". The text form is HCL in the Sandboxfile's own shape.`
}

// sensitiveText stands for a value derived from a sensitive variable.
const sensitiveText = "(sensitive)"

// resolvedConfig is sbx config --json: the project as sbx will run it.
type resolvedConfig struct {
	Project   resolvedProject   `json:"project"`
	Networks  []resolvedNetwork `json:"networks"`
	Sandboxes []resolvedSandbox `json:"sandboxes"`
}

type resolvedProject struct {
	Name   string `json:"name"`
	Dir    string `json:"dir"`
	Driver string `json:"driver"` // after --driver, SBX_DRIVER and the default
}

type resolvedNetwork struct {
	Name   string `json:"name"`
	Subnet string `json:"subnet"`
}

type resolvedSandbox struct {
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	CPUs        int               `json:"cpus"`
	MemoryMiB   int               `json:"memory_mib"`
	Entrypoint  []string          `json:"entrypoint"` // null: the image's
	Command     []string          `json:"command"`    // null: the image's
	Workdir     string            `json:"workdir,omitempty"`
	Env         map[string]string `json:"env"`
	EnvFiles    []string          `json:"env_files,omitempty"` // merged into env already
	User        string            `json:"user,omitempty"`
	Rlimits     map[string]string `json:"rlimits"`
	Mounts      []resolvedMount   `json:"mounts"`
	Ports       []resolvedPort    `json:"ports"`
	Network     resolvedNet       `json:"network"`
	Restart     string            `json:"restart"`
	StopTimeout string            `json:"stop_timeout"`
	Ready       *resolvedReady    `json:"ready,omitempty"`
	DependsOn   []string          `json:"depends_on"` // every dependency: depends_on and references
	Watch       *resolvedWatch    `json:"watch,omitempty"`
}

type resolvedMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

type resolvedPort struct {
	HostIP   string `json:"host_ip"`
	Host     int    `json:"host"`
	Guest    int    `json:"guest"`
	Protocol string `json:"protocol"`
}

type resolvedNet struct {
	Scope string `json:"scope"`
	Group string `json:"group,omitempty"`
	IP    string `json:"ip,omitempty"`
}

type resolvedReady struct {
	TCP      int    `json:"tcp,omitempty"`
	HTTP     string `json:"http,omitempty"`
	Log      string `json:"log,omitempty"`
	Timeout  string `json:"timeout"`
	Interval string `json:"interval"`
}

type resolvedWatch struct {
	Paths  []string `json:"paths"`
	Ignore []string `json:"ignore"`
}

func (c *configCmd) Run(a *app) error {
	cfg, err := a.load()
	if err != nil {
		return err
	}
	rc := resolve(cfg, a.driverName(cfg))
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rc)
	}
	_, err = a.stdout.Write(rc.hcl())
	return err
}

// resolve is the configuration of cfg as sbx runs it under driver, with sensitive values
// masked.
func resolve(cfg *lang.Config, driver string) resolvedConfig {
	rc := resolvedConfig{
		Project:   resolvedProject{Name: cfg.Project.Name, Dir: cfg.Dir, Driver: driver},
		Networks:  []resolvedNetwork{},
		Sandboxes: []resolvedSandbox{},
	}
	for _, n := range cfg.Networks {
		rc.Networks = append(rc.Networks, resolvedNetwork{Name: n.Name, Subnet: n.Subnet.String()})
	}
	for _, sb := range cfg.Sandboxes {
		rc.Sandboxes = append(rc.Sandboxes, resolveSandbox(cfg, sb))
	}
	return rc
}

func resolveSandbox(cfg *lang.Config, sb *lang.Sandbox) resolvedSandbox {
	hide := func(path string) bool { return isSensitive(sb, path) }
	str := func(path, v string) string {
		if hide(path) {
			return sensitiveText
		}
		return v
	}
	list := func(path string, v []string) []string {
		if v != nil && hide(path) {
			return []string{sensitiveText}
		}
		return v
	}
	r := resolvedSandbox{
		Name:        sb.Name,
		Image:       str("image", sb.Image),
		CPUs:        sb.CPUs,
		MemoryMiB:   sb.MemoryMiB,
		Entrypoint:  list("entrypoint", sb.Entrypoint),
		Command:     list("command", sb.Command),
		Workdir:     str("workdir", sb.Workdir),
		Env:         map[string]string{},
		EnvFiles:    list("env_files", sb.EnvFiles),
		User:        str("user", sb.User),
		Rlimits:     map[string]string{},
		Mounts:      []resolvedMount{},
		Ports:       []resolvedPort{},
		Network:     resolvedNet{Scope: sb.Network.Scope, Group: sb.Network.Group},
		Restart:     sb.Restart,
		StopTimeout: formatDuration(sb.StopTimeout),
		DependsOn:   cfg.Dependencies(sb.Name),
	}
	if r.DependsOn == nil {
		r.DependsOn = []string{}
	}
	for k, v := range sb.Env {
		r.Env[k] = str("env."+k, v)
	}
	for _, rl := range sb.Rlimits {
		r.Rlimits[rl.Resource] = formatRlimit(rl.Soft) + ":" + formatRlimit(rl.Hard)
	}
	for i, m := range sb.Mounts {
		base := fmt.Sprintf("mounts[%d]", i)
		r.Mounts = append(r.Mounts, resolvedMount{Source: str(base+".source", m.Source), Target: str(base+".target", m.Target), ReadOnly: m.ReadOnly})
	}
	for _, p := range sb.Ports {
		r.Ports = append(r.Ports, resolvedPort(p))
	}
	if sb.Network.IP.IsValid() {
		r.Network.IP = sb.Network.IP.String()
	}
	if rd := sb.Ready; rd != nil {
		r.Ready = &resolvedReady{TCP: rd.TCP, HTTP: str("ready.http", rd.HTTP), Log: str("ready.log", rd.Log),
			Timeout: formatDuration(rd.Timeout), Interval: formatDuration(rd.Interval)}
		if rd.HTTP == "" {
			r.Ready.HTTP = ""
		}
		if rd.Log == "" {
			r.Ready.Log = ""
		}
	}
	if w := sb.Watch; w != nil {
		r.Watch = &resolvedWatch{Paths: list("watch.paths", w.Paths), Ignore: list("watch.ignore", w.Ignore)}
		if r.Watch.Ignore == nil {
			r.Watch.Ignore = []string{}
		}
	}
	return r
}

// isSensitive reports whether the value at path derives from a sensitive variable: lang
// lists it, something inside it, or a whole it lies in ("env" covers "env.TOKEN").
func isSensitive(sb *lang.Sandbox, path string) bool {
	if sb.IsSensitive(path) {
		return true
	}
	for i := range path {
		if (path[i] == '.' || path[i] == '[') && slices.Contains(sb.Sensitive, path[:i]) {
			return true
		}
	}
	return false
}

func formatMiB(mib int) string {
	if mib > 0 && mib%1024 == 0 {
		return strconv.Itoa(mib/1024) + "GiB"
	}
	return strconv.Itoa(mib) + "MiB"
}

// formatDuration writes d as the Sandboxfile does: "10s", "1m30s", "2m", "500ms".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatRlimit(v uint64) string {
	if v == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// hcl renders the configuration in the Sandboxfile's shape, canonically formatted.
func (rc resolvedConfig) hcl() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	p := body.AppendNewBlock("project", nil).Body()
	p.SetAttributeValue("name", cty.StringVal(rc.Project.Name))
	p.SetAttributeValue("driver", cty.StringVal(rc.Project.Driver))
	for _, n := range rc.Networks {
		body.AppendNewline()
		body.AppendNewBlock("network", []string{n.Name}).Body().SetAttributeValue("subnet", cty.StringVal(n.Subnet))
	}
	for _, s := range rc.Sandboxes {
		body.AppendNewline()
		b := body.AppendNewBlock("sandbox", []string{s.Name}).Body()
		b.SetAttributeValue("image", cty.StringVal(s.Image))
		b.SetAttributeValue("cpus", cty.NumberIntVal(int64(s.CPUs)))
		b.SetAttributeValue("memory", cty.StringVal(formatMiB(s.MemoryMiB)))
		if s.Entrypoint != nil {
			b.SetAttributeValue("entrypoint", stringList(s.Entrypoint))
		}
		if s.Command != nil {
			b.SetAttributeValue("command", stringList(s.Command))
		}
		if s.Workdir != "" {
			b.SetAttributeValue("workdir", cty.StringVal(s.Workdir))
		}
		if len(s.Env) > 0 {
			b.SetAttributeValue("env", stringMap(s.Env))
		}
		if s.User != "" {
			b.SetAttributeValue("user", cty.StringVal(s.User))
		}
		if len(s.Rlimits) > 0 {
			b.SetAttributeValue("rlimits", stringMap(s.Rlimits))
		}
		for _, m := range s.Mounts {
			mb := b.AppendNewBlock("mount", nil).Body()
			mb.SetAttributeValue("source", cty.StringVal(m.Source))
			mb.SetAttributeValue("target", cty.StringVal(m.Target))
			mb.SetAttributeValue("read_only", cty.BoolVal(m.ReadOnly))
		}
		for _, p := range s.Ports {
			pb := b.AppendNewBlock("port", nil).Body()
			pb.SetAttributeValue("host", cty.NumberIntVal(int64(p.Host)))
			pb.SetAttributeValue("guest", cty.NumberIntVal(int64(p.Guest)))
			pb.SetAttributeValue("host_ip", cty.StringVal(p.HostIP))
			pb.SetAttributeValue("protocol", cty.StringVal(p.Protocol))
		}
		nb := b.AppendNewBlock("network", nil).Body()
		nb.SetAttributeValue("scope", cty.StringVal(s.Network.Scope))
		if s.Network.Group != "" {
			nb.SetAttributeTraversal("group", hcl.Traversal{hcl.TraverseRoot{Name: "network"}, hcl.TraverseAttr{Name: s.Network.Group}})
		}
		if s.Network.IP != "" {
			nb.SetAttributeValue("ip", cty.StringVal(s.Network.IP))
		}
		b.SetAttributeValue("restart", cty.StringVal(s.Restart))
		b.SetAttributeValue("stop_timeout", cty.StringVal(s.StopTimeout))
		if r := s.Ready; r != nil {
			rb := b.AppendNewBlock("ready", nil).Body()
			switch {
			case r.TCP != 0:
				rb.SetAttributeValue("tcp", cty.NumberIntVal(int64(r.TCP)))
			case r.HTTP != "":
				rb.SetAttributeValue("http", cty.StringVal(r.HTTP))
			case r.Log != "":
				rb.SetAttributeValue("log", cty.StringVal(r.Log))
			}
			rb.SetAttributeValue("timeout", cty.StringVal(r.Timeout))
			rb.SetAttributeValue("interval", cty.StringVal(r.Interval))
		}
		if len(s.DependsOn) > 0 {
			var toks hclwrite.Tokens
			toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenOBrack, Bytes: []byte("[")})
			for i, d := range s.DependsOn {
				if i > 0 {
					toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComma, Bytes: []byte(", ")})
				}
				toks = append(toks, hclwrite.TokensForTraversal(hcl.Traversal{hcl.TraverseRoot{Name: "sandbox"}, hcl.TraverseAttr{Name: d}})...)
			}
			toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenCBrack, Bytes: []byte("]")})
			b.SetAttributeRaw("depends_on", toks)
		}
		if w := s.Watch; w != nil {
			wb := b.AppendNewBlock("watch", nil).Body()
			wb.SetAttributeValue("paths", stringList(w.Paths))
			if len(w.Ignore) > 0 {
				wb.SetAttributeValue("ignore", stringList(w.Ignore))
			}
		}
	}
	return hclwrite.Format(f.Bytes())
}

func stringList(v []string) cty.Value {
	if len(v) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(v))
	for i, s := range v {
		vals[i] = cty.StringVal(s)
	}
	return cty.TupleVal(vals)
}

func stringMap(m map[string]string) cty.Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make(map[string]cty.Value, len(m))
	for _, k := range keys {
		vals[k] = cty.StringVal(m[k])
	}
	return cty.ObjectVal(vals)
}
