package lang

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Defaults of a sandbox.
const (
	defaultStopTimeout   = 10 * time.Second
	defaultReadyTimeout  = 60 * time.Second
	defaultReadyInterval = 500 * time.Millisecond
	defaultHostIP        = "127.0.0.1"
)

type sbDecl struct {
	out        *Sandbox
	block      *hcl.Block
	body       *hclsyntax.Body
	raw        *hcl.BodyContent // the body checked against the full schema
	ipDeclared bool
	ipRange    hcl.Range
	netRange   hcl.Range   // the network block, or the sandbox header
	portRanges []hcl.Range // parallel to out.Ports
	badForEach []hcl.Range // for_each expressions already reported
	hasDynamic bool        // without dynamic blocks, the raw content is used as is
	refs       []hcl.Traversal
	targets    map[string]hcl.Range // mount targets (cleaned) already used, for duplicates
}

// phase1 checks the whole body against the schema, then evaluates the port and network blocks,
// which may not refer to sandbox.* because the sandbox objects are built from them.
func (l *loader) phase1(sb *sbDecl) {
	raw, diags := sb.body.Content(l.schemas.sandbox)
	l.diags = append(l.diags, diags...)
	sb.raw = raw
	sb.netRange = sb.block.DefRange
	walkTraversals(sb.body, func(e hclsyntax.Expression, travs []hcl.Traversal) {
		l.travs[e] = travs
		sb.refs = append(sb.refs, travs...)
	})
	for _, b := range raw.Blocks {
		if b.Type == "dynamic" {
			sb.hasDynamic = true
		}
		if b.Type == "dynamic" && b.Labels[0] != "port" && b.Labels[0] != "mount" {
			l.errorf(b.LabelRanges[0].Ptr(), "Unsupported dynamic block", "dynamic %q is not supported: only mount and port blocks can be generated with dynamic.", b.Labels[0])
		}
	}
	c := raw
	if sb.hasDynamic {
		l.checkDynamic(sb, "port", stageNetworks)
		var diags hcl.Diagnostics
		c, _, diags = dynblock.Expand(sb.body, l.ctx).PartialContent(phase1Schema())
		l.appendFiltered(diags, sb.badForEach)
	}
	var netBlock *hcl.Block
	for _, b := range c.Blocks {
		switch b.Type {
		case "port":
			l.decodePort(sb, b)
		case "network":
			if !l.firstBlock(&netBlock, b, "") {
				continue
			}
			l.decodeSandboxNetwork(sb, b)
		}
	}
}

// checkDynamic reports for_each expressions of dynamic blocks of type typ that refer to what
// is not available at stage, and remembers them so the expansion's errors are not repeated.
func (l *loader) checkDynamic(sb *sbDecl, typ string, stage int) {
	for _, b := range sb.body.Blocks {
		if b.Type != "dynamic" || len(b.Labels) == 0 || b.Labels[0] != typ {
			continue
		}
		if a := b.Body.Attributes["for_each"]; a != nil {
			if !l.checkRefs(a.Expr.Variables(), stage, "a dynamic "+typ+" block's for_each") {
				sb.badForEach = append(sb.badForEach, a.Expr.Range())
			}
		}
	}
}

func (l *loader) appendFiltered(diags hcl.Diagnostics, skip []hcl.Range) {
	for _, d := range diags {
		drop := false
		for _, r := range skip {
			if d.Subject != nil && d.Subject.Filename == r.Filename && d.Subject.Start.Byte >= r.Start.Byte && d.Subject.Start.Byte < r.End.Byte {
				drop = true
			}
		}
		if !drop {
			l.diags = append(l.diags, d)
		}
	}
}

func (l *loader) decodePort(sb *sbDecl, b *hcl.Block) {
	c, diags := b.Body.Content(portSchema())
	l.diags = append(l.diags, diags...)
	field := fmt.Sprintf("ports[%d]", len(sb.out.Ports))
	p := Port{HostIP: defaultHostIP, Protocol: "tcp"}
	ok := true
	if c.Attributes["guest"] == nil {
		l.errorf(b.DefRange.Ptr(), "Missing required argument", "A port block needs guest, the port inside the sandbox (host defaults to the same number).")
		ok = false
	} else if p.Guest, ok = l.portNum(c.Attributes["guest"], stageNetworks, sb, field+".guest"); !ok {
		ok = false
	}
	p.Host = p.Guest
	if a := c.Attributes["host"]; a != nil {
		var hok bool
		if p.Host, hok = l.portNum(a, stageNetworks, sb, field+".host"); !hok {
			ok = false
		}
	}
	if a := c.Attributes["host_ip"]; a != nil {
		if s, sok := l.str(a, stageNetworks, sb, field+".host_ip"); sok {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				l.errorf(a.Expr.Range().Ptr(), "Invalid host IP", "%q is not an IP address; use \"127.0.0.1\" (this machine only) or \"0.0.0.0\" (every interface).", s)
				ok = false
			} else {
				p.HostIP = ip.String()
			}
		} else {
			ok = false
		}
	}
	if a := c.Attributes["protocol"]; a != nil {
		if s, sok := l.str(a, stageNetworks, sb, field+".protocol"); sok {
			s = strings.ToLower(s)
			if s != "tcp" && s != "udp" {
				l.errorf(a.Expr.Range().Ptr(), "Invalid protocol", "Protocol %q is not supported; use \"tcp\" or \"udp\".", s)
				ok = false
			}
			p.Protocol = s
		} else {
			ok = false
		}
	}
	if ok {
		sb.out.Ports = append(sb.out.Ports, p)
		sb.portRanges = append(sb.portRanges, b.DefRange)
	}
}

func (l *loader) portNum(a *hcl.Attribute, stage int, sb *sbDecl, field string) (int, bool) {
	n, ok := l.integer(a, stage, sb, field)
	if !ok {
		return 0, false
	}
	if n < 1 || n > 65535 {
		l.errorf(a.Expr.Range().Ptr(), "Invalid port", "%s = %d is out of range: ports are between 1 and 65535.", a.Name, n)
		return 0, false
	}
	return n, true
}

func (l *loader) decodeSandboxNetwork(sb *sbDecl, b *hcl.Block) {
	c, diags := b.Body.Content(sandboxNetworkSchema())
	l.diags = append(l.diags, diags...)
	sb.netRange = b.DefRange
	spec := NetworkSpec{Scope: ScopePublic}
	scopes := []string{ScopeNone, ScopeGroup, ScopePublic, ScopeAny}
	scopeOK := true
	if a := c.Attributes["scope"]; a != nil {
		s, ok := l.str(a, stageNetworks, sb, "network.scope")
		switch {
		case !ok:
			scopeOK = false
		case s == ScopeNone || s == ScopeGroup || s == ScopePublic || s == ScopeAny:
			spec.Scope = s
		default:
			l.errorf(a.Expr.Range().Ptr(), "Invalid network scope", "Scope %q is not known; use none, group, public or any.%s", s, suggest(s, scopes))
			scopeOK = false
		}
	}
	groupAttr := c.Attributes["group"]
	if groupAttr != nil {
		if v, ok := l.value(groupAttr, stageNetworks, sb, "network.group"); ok {
			name := ""
			switch {
			case v.Type().IsObjectType() && v.Type().HasAttribute("name"):
				if n := v.GetAttr("name"); n.Type() == cty.String {
					name = n.AsString()
				}
			case v.Type() == cty.String:
				name = v.AsString()
			}
			switch {
			case name == "":
				l.errorf(groupAttr.Expr.Range().Ptr(), "Invalid network group", "group must refer to a network, like network.backend.")
			case l.networks[name] == nil:
				l.errorf(groupAttr.Expr.Range().Ptr(), "Reference to undeclared network", "No network named %q is defined.%s Define it with a network block.", name, suggest(name, l.netNames))
			default:
				spec.Group = name
			}
		}
	}
	if a := c.Attributes["ip"]; a != nil {
		sb.ipDeclared = true
		sb.ipRange = a.Expr.Range()
		if s, ok := l.str(a, stageNetworks, sb, "network.ip"); ok {
			ip, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				l.errorf(a.Expr.Range().Ptr(), "Invalid IP address", "%q is not an IP address.", s)
			case groupAttr == nil:
				l.errorf(a.Expr.Range().Ptr(), "IP address without a group", "An ip is an address inside a network group; add group = network.NAME, or remove ip.")
			default:
				spec.IP = ip
			}
		}
	}
	switch {
	case !scopeOK:
	case spec.Scope == ScopeGroup && groupAttr == nil:
		l.errorf(b.DefRange.Ptr(), "Missing network group", "scope = \"group\" needs group = network.NAME: the group is the only network the sandbox can reach.")
	case spec.Scope == ScopeNone && groupAttr != nil:
		l.errorf(groupAttr.Expr.Range().Ptr(), "Network group not allowed", "scope = \"none\" gives the sandbox no network at all; remove group, or use scope = \"group\".")
		spec.Group, spec.IP = "", netip.Addr{}
	}
	sb.out.Network = spec
}

// phase2 evaluates everything else, with sandbox.* and every local available.
func (l *loader) phase2(sb *sbDecl) {
	if sb.raw == nil {
		return
	}
	c := sb.raw
	if sb.hasDynamic {
		l.checkDynamic(sb, "mount", stageAll)
		var diags hcl.Diagnostics
		c, _, diags = dynblock.Expand(sb.body, l.ctx).PartialContent(phase2Schema())
		l.appendFiltered(diags, sb.badForEach)
	}
	out, a := sb.out, c.Attributes

	if a["image"] == nil {
		l.errorf(sb.block.DefRange.Ptr(), "Missing required argument", "Sandbox %q needs an image, like image = \"docker.io/library/alpine:3.20\".", out.Name)
	} else {
		l.decodeImage(sb, a["image"])
	}
	l.decodeResources(sb, a)
	l.decodeProcess(sb, a)
	if d, ok := l.duration(a["stop_timeout"], sb, "stop_timeout", true); ok {
		out.StopTimeout = d
	}
	l.decodeBlocks(sb, c.Blocks)
}

// decodeResources reads cpus, memory, pids and rlimits.
func (l *loader) decodeResources(sb *sbDecl, a hcl.Attributes) {
	out := sb.out
	if n, ok := l.integer(a["cpus"], stageAll, sb, "cpus"); ok {
		if n < 1 || n > 255 {
			l.errorf(a["cpus"].Expr.Range().Ptr(), "Invalid cpus", "cpus = %d is out of range: use 1 to 255 vCPUs.", n)
		} else {
			out.CPUs = n
		}
	}
	if n, ok := l.integer(a["pids"], stageAll, sb, "pids"); ok {
		if n < 1 || n > MaxPids {
			l.errorf(a["pids"].Expr.Range().Ptr(), "Invalid pids", "pids = %d is out of range: use 1 to %d processes (the default is %d).", n, MaxPids, DefaultPids)
		} else {
			out.Pids = n
		}
	}
	if v, ok := l.value(a["memory"], stageAll, sb, "memory"); ok {
		if mib, err := parseMemory(v); err != nil {
			l.errorf(a["memory"].Expr.Range().Ptr(), "Invalid memory", "%s", sentence(err))
		} else {
			out.MemoryMiB = mib
		}
	}
	l.decodeRlimits(sb, a["rlimits"])
}

// decodeProcess reads what the payload runs as: entrypoint, command, workdir, user, env and
// env_file, and its restart policy.
func (l *loader) decodeProcess(sb *sbDecl, a hcl.Attributes) {
	out := sb.out
	if s, ok := l.strList(a["entrypoint"], stageAll, sb, "entrypoint"); ok {
		out.Entrypoint = s
	}
	if s, ok := l.strList(a["command"], stageAll, sb, "command"); ok {
		out.Command = s
	}
	if s, ok := l.str(a["workdir"], stageAll, sb, "workdir"); ok {
		if !strings.HasPrefix(s, "/") {
			l.errorf(a["workdir"].Expr.Range().Ptr(), "Invalid workdir", "workdir %q must be an absolute path inside the sandbox, like /app.", s)
		} else {
			out.Workdir = s
		}
	}
	if s, ok := l.str(a["user"], stageAll, sb, "user"); ok {
		out.User = s
	}
	l.decodeEnv(sb, a["env"], a["env_file"])
	if s, ok := l.str(a["restart"], stageAll, sb, "restart"); ok {
		switch s {
		case RestartNo, RestartOnFailure, RestartAlways:
			out.Restart = s
		default:
			l.errorf(a["restart"].Expr.Range().Ptr(), "Invalid restart policy", "restart = %q is not known; use \"no\", \"on-failure\" or \"always\".%s", s, suggest(s, []string{RestartNo, RestartOnFailure, RestartAlways}))
		}
	}
}

// decodeBlocks reads the mount, ready and watch blocks.
func (l *loader) decodeBlocks(sb *sbDecl, blocks hcl.Blocks) {
	var ready, watch *hcl.Block
	for _, b := range blocks {
		switch b.Type {
		case "mount":
			l.decodeMount(sb, b)
		case "ready":
			if !l.firstBlock(&ready, b, "") {
				continue
			}
			l.decodeReady(sb, b)
		case "watch":
			if !l.firstBlock(&watch, b, " List every path in one block.") {
				continue
			}
			l.decodeWatch(sb, b)
		}
	}
}

func (l *loader) decodeEnv(sb *sbDecl, envAttr, fileAttr *hcl.Attribute) {
	env := map[string]string{}
	if files, ok := l.strList(fileAttr, stageAll, sb, "env_files"); ok {
		for _, f := range files {
			p := l.abs(f)
			hp := l.checkHostPath(p)
			if hp.outside && !hp.allowed {
				l.errorf(fileAttr.Expr.Range().Ptr(), "env_file outside the project", "%s is outside the project directory %s (after following symlinks): a Sandboxfile from a cloned repository must not read arbitrary files of the host into a sandbox. Move the file into the project, or list it in the project block: allow_host_paths = [%q].", p, l.cfg.Dir, p)
				continue
			}
			if l.sensitive(fileAttr.Expr.Range(), "env_file", p, hp) {
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				l.errorf(fileAttr.Expr.Range().Ptr(), "Cannot read env_file", "%s: %s. env_file paths are relative to the Sandboxfile's directory.", f, unwrapPathErr(err))
				continue
			}
			l.addReadFile(p)
			vals, err := parseDotenv(data)
			if err != nil {
				l.errorf(fileAttr.Expr.Range().Ptr(), "Invalid env_file", "%s, %s.", f, err)
				continue
			}
			for k, v := range vals {
				env[k] = v
			}
			sb.out.EnvFiles = append(sb.out.EnvFiles, p)
		}
	}
	if envAttr != nil {
		v, ok := l.eval(envAttr.Expr, l.ctx, stageAll, "this expression")
		if ok && !v.IsNull() {
			v, marks := v.Unmark()
			_, whole := marks[sensitiveMark]
			if !v.Type().IsObjectType() && !v.Type().IsMapType() {
				l.errorf(envAttr.Expr.Range().Ptr(), "Incorrect attribute value type", "env must be a map of strings, like { NAME = \"value\" }.")
			} else {
				for it := v.ElementIterator(); it.Next(); {
					k, ev := it.Element()
					key := k.AsString()
					if whole || ev.ContainsMarked() {
						sb.out.Sensitive = append(sb.out.Sensitive, "env."+key)
					}
					ev, _ = ev.UnmarkDeep()
					if !validEnvName(key) {
						l.errorf(envAttr.Expr.Range().Ptr(), "Invalid environment variable name", "%q cannot be an environment variable name: it must be non-empty and contain no '=' or NUL.", key)
						continue
					}
					s, err := convert.Convert(ev, cty.String)
					if err != nil || s.IsNull() {
						l.errorf(envAttr.Expr.Range().Ptr(), "Incorrect attribute value type", "env.%s must be a string.", key)
						continue
					}
					env[key] = s.AsString()
				}
			}
		}
	}
	if len(env) > 0 {
		sb.out.Env = env
	}
}

func validEnvName(k string) bool {
	return k != "" && !strings.ContainsAny(k, "=\x00")
}

func (l *loader) decodeRlimits(sb *sbDecl, a *hcl.Attribute) {
	v, ok := l.value(a, stageAll, sb, "rlimits")
	if !ok {
		return
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "rlimits must be a map like { NOFILE = \"1024:4096\" }.")
		return
	}
	seen := map[string]bool{}
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		name, num, err := parseRlimitName(k.AsString())
		if err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Unknown rlimit", "%s", sentence(err))
			continue
		}
		if seen[name] {
			l.errorf(a.Expr.Range().Ptr(), "Duplicate rlimit", "%s is set twice (names are case-insensitive and RLIMIT_ is optional).", name)
			continue
		}
		seen[name] = true
		soft, hard, err := parseRlimitValue(ev)
		if err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Invalid rlimit", "%s: %s", name, sentence(err))
			continue
		}
		sb.out.Rlimits = append(sb.out.Rlimits, Rlimit{Resource: name, Number: num, Soft: soft, Hard: hard})
	}
	sort.Slice(sb.out.Rlimits, func(i, j int) bool { return sb.out.Rlimits[i].Resource < sb.out.Rlimits[j].Resource })
}

func (l *loader) decodeMount(sb *sbDecl, b *hcl.Block) {
	c, diags := b.Body.Content(mountSchema())
	l.diags = append(l.diags, diags...)
	field := fmt.Sprintf("mounts[%d]", len(sb.out.Mounts))
	var m Mount
	ok := true
	srcAttr, volAttr := c.Attributes["source"], c.Attributes["volume"]
	switch {
	case srcAttr == nil && volAttr == nil:
		l.errorf(b.DefRange.Ptr(), "Missing mount source", "A mount block needs source (a host path) or volume (a named volume, like volume = volume.data).")
		ok = false
	case srcAttr != nil && volAttr != nil:
		l.errorf(volAttr.NameRange.Ptr(), "Conflicting mount sources", "A mount takes exactly one of source (a host path) and volume (a named volume); remove one.")
		ok = false
	}
	if c.Attributes["target"] == nil {
		l.errorf(b.DefRange.Ptr(), "Missing required argument", "A mount block needs target, an absolute path in the sandbox.")
		ok = false
	}
	if s, sok := l.str(srcAttr, stageAll, sb, field+".source"); sok {
		if s == "" {
			l.errorf(srcAttr.Expr.Range().Ptr(), "Invalid mount source", "source must not be empty; use \".\" for the Sandboxfile's directory.")
			ok = false
		}
		m.Source = l.abs(s)
		hp := l.checkHostPath(m.Source)
		if l.sensitive(srcAttr.Expr.Range(), "mount source", m.Source, hp) {
			ok = false
		}
		m.OutsideProject = hp.outside
	} else if srcAttr != nil {
		ok = false
	}
	if volAttr != nil {
		if name, vok := l.volumeRef(sb, volAttr, field+".volume"); vok {
			m.Volume = name
		} else {
			ok = false
		}
	}
	if s, sok := l.str(c.Attributes["target"], stageAll, sb, field+".target"); sok {
		rng := c.Attributes["target"].Expr.Range()
		clean := path.Clean(s)
		prev, dup := sb.targets[clean]
		switch {
		case !strings.HasPrefix(s, "/"):
			l.errorf(&rng, "Invalid mount target", "target %q must be an absolute path inside the sandbox, like /data.", s)
			ok = false
		case dup:
			l.errorf(&rng, "Duplicate mount target", "%s is already the target of the mount at %s; a path in the sandbox can show one mount only.", clean, at(prev))
			ok = false
		default:
			if sb.targets == nil {
				sb.targets = map[string]hcl.Range{}
			}
			sb.targets[clean] = rng
		}
		m.Target = s
	} else {
		ok = false
	}
	if v, bok := l.boolean(c.Attributes["read_only"], stageAll, sb, field+".read_only"); bok {
		m.ReadOnly = v
	}
	if ok {
		sb.out.Mounts = append(sb.out.Mounts, m)
	}
}

// volumeRef evaluates a mount's volume attribute: a reference like volume.data, or the name
// of a declared volume as a string (handy in dynamic blocks).
func (l *loader) volumeRef(sb *sbDecl, a *hcl.Attribute, field string) (string, bool) {
	v, ok := l.value(a, stageAll, sb, field)
	if !ok {
		return "", false
	}
	name := ""
	switch {
	case v.Type().IsObjectType() && v.Type().HasAttribute("name"):
		if n := v.GetAttr("name"); n.Type() == cty.String && !n.IsNull() {
			name = n.AsString()
		}
	case v.Type() == cty.String:
		name = v.AsString()
	}
	switch {
	case name == "":
		l.errorf(a.Expr.Range().Ptr(), "Invalid volume", "volume must refer to a volume, like volume.data, declared with a volume \"data\" {} block.")
		return "", false
	case l.volumes[name] == nil:
		l.errorf(a.Expr.Range().Ptr(), "Reference to undeclared volume", "No volume named %q is defined.%s Define it with a volume %q {} block.", name, suggest(name, l.volNames), name)
		return "", false
	}
	return name, true
}

func (l *loader) decodeReady(sb *sbDecl, b *hcl.Block) {
	c, diags := b.Body.Content(readySchema())
	l.diags = append(l.diags, diags...)
	r := &Ready{Timeout: defaultReadyTimeout, Interval: defaultReadyInterval}
	probes := 0
	for _, p := range []string{"tcp", "http", "log"} {
		if c.Attributes[p] != nil {
			probes++
		}
	}
	switch {
	case probes == 0:
		l.errorf(b.DefRange.Ptr(), "Missing readiness probe", "A ready block needs one probe: tcp = PORT, http = \"URL\" or log = \"REGEXP\".")
	case probes > 1:
		l.errorf(b.DefRange.Ptr(), "Conflicting readiness probes", "A ready block takes exactly one of tcp, http and log.")
	}
	ok := probes == 1
	if a := c.Attributes["tcp"]; a != nil {
		if n, pok := l.portNum(a, stageAll, sb, "ready.tcp"); pok {
			r.TCP = n
		} else {
			ok = false
		}
	}
	if a := c.Attributes["http"]; a != nil {
		if s, sok := l.str(a, stageAll, sb, "ready.http"); sok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				l.errorf(a.Expr.Range().Ptr(), "Invalid readiness URL", "%q is not an http or https URL, like \"http://127.0.0.1:8080/health\".", s)
				ok = false
			}
			r.HTTP = s
		} else {
			ok = false
		}
	}
	if a := c.Attributes["log"]; a != nil {
		if s, sok := l.str(a, stageAll, sb, "ready.log"); sok {
			if _, err := regexp.Compile(s); err != nil {
				l.errorf(a.Expr.Range().Ptr(), "Invalid readiness pattern", "log = %q is not a regular expression: %s.", s, err)
				ok = false
			}
			r.Log = s
		} else {
			ok = false
		}
	}
	if d, dok := l.duration(c.Attributes["timeout"], sb, "ready.timeout", false); dok {
		r.Timeout = d
	}
	if d, dok := l.duration(c.Attributes["interval"], sb, "ready.interval", false); dok {
		r.Interval = d
	}
	if ok {
		sb.out.Ready = r
	}
}

func (l *loader) decodeWatch(sb *sbDecl, b *hcl.Block) {
	c, diags := b.Body.Content(watchSchema())
	l.diags = append(l.diags, diags...)
	if c.Attributes["paths"] == nil {
		l.errorf(b.DefRange.Ptr(), "Missing required argument", "A watch block needs paths, the host paths whose changes restart the sandbox, like paths = [\"./src\"].")
		return
	}
	paths, ok := l.strList(c.Attributes["paths"], stageAll, sb, "watch.paths")
	if !ok {
		return
	}
	w := &Watch{Paths: make([]string, len(paths))}
	for i, p := range paths {
		w.Paths[i] = l.abs(p)
	}
	if ig, ok := l.strList(c.Attributes["ignore"], stageAll, sb, "watch.ignore"); ok {
		w.Ignore = ig
	}
	sb.out.Watch = w
}

// --- typed attribute helpers ---

func stageWhat(stage int) string {
	switch stage {
	case stageBase:
		return "network subnets or the project block"
	case stageNetworks:
		return "port and network blocks"
	}
	return "this expression"
}

// value evaluates a, records field as sensitive when the value is marked, and returns the
// unmarked value. It returns false when a is absent or null, or an error was reported.
func (l *loader) value(a *hcl.Attribute, stage int, sb *sbDecl, field string) (cty.Value, bool) {
	if a == nil {
		return cty.NilVal, false
	}
	v, ok := l.eval(a.Expr, l.ctx, stage, stageWhat(stage))
	if !ok || v.IsNull() {
		return cty.NilVal, false
	}
	if sb != nil && field != "" && v.ContainsMarked() {
		sb.out.Sensitive = append(sb.out.Sensitive, field)
	}
	v, _ = v.UnmarkDeep()
	return v, true
}

func (l *loader) convert(a *hcl.Attribute, v cty.Value, ty cty.Type) (cty.Value, bool) {
	out, err := convert.Convert(v, ty)
	if err != nil {
		l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", a.Name, err)
		return cty.NilVal, false
	}
	if out.IsNull() {
		return cty.NilVal, false
	}
	return out, true
}

func (l *loader) str(a *hcl.Attribute, stage int, sb *sbDecl, field string) (string, bool) {
	v, ok := l.value(a, stage, sb, field)
	if !ok {
		return "", false
	}
	if v, ok = l.convert(a, v, cty.String); !ok {
		return "", false
	}
	return v.AsString(), true
}

func (l *loader) boolean(a *hcl.Attribute, stage int, sb *sbDecl, field string) (bool, bool) {
	v, ok := l.value(a, stage, sb, field)
	if !ok {
		return false, false
	}
	if v, ok = l.convert(a, v, cty.Bool); !ok {
		return false, false
	}
	return v.True(), true
}

func (l *loader) integer(a *hcl.Attribute, stage int, sb *sbDecl, field string) (int, bool) {
	v, ok := l.value(a, stage, sb, field)
	if !ok {
		return 0, false
	}
	if v, ok = l.convert(a, v, cty.Number); !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != 0 || n < -1<<31 || n > 1<<31-1 {
		l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: a whole number is required, not %s.", a.Name, bf.Text('g', -1))
		return 0, false
	}
	return int(n), true
}

func (l *loader) strList(a *hcl.Attribute, stage int, sb *sbDecl, field string) ([]string, bool) {
	v, ok := l.value(a, stage, sb, field)
	if !ok {
		return nil, false
	}
	if v, ok = l.convert(a, v, cty.List(cty.String)); !ok {
		return nil, false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: the list must not contain null.", a.Name)
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

func (l *loader) duration(a *hcl.Attribute, sb *sbDecl, field string, zeroOK bool) (time.Duration, bool) {
	s, ok := l.str(a, stageAll, sb, field)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(s)
	if err == nil && d == 0 && !zeroOK {
		err = fmt.Errorf("%q must be longer than zero", s)
	}
	if err != nil {
		l.errorf(a.Expr.Range().Ptr(), "Invalid duration", "%s: %s", a.Name, sentence(err))
		return 0, false
	}
	return d, true
}

// firstBlock records b in *first when it is the sandbox's first block of its type; a second
// one is reported, pointing at the first, and false returned. hint ends the detail.
func (l *loader) firstBlock(first **hcl.Block, b *hcl.Block, hint string) bool {
	if *first != nil {
		l.errorf(b.DefRange.Ptr(), "Duplicate "+b.Type+" block", "A sandbox has at most one %s block; the first one is at %s.%s", b.Type, at((*first).DefRange), hint)
		return false
	}
	*first = b
	return true
}
