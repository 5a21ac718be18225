package compose

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/sandboxfile"
	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/lang/imageref"
)

type converter struct {
	opts     options
	project  *types.Project
	files    []types.ConfigFile
	notes    []convert.Note
	names    map[string]string // service name → sandbox name
	groups   map[string]*group // compose network name → its sbx group
	volNames map[string]string // compose volume name → sbx volume name
	out      *sandboxfile.File
}

// group is one sbx network: one or more Compose networks that share a service, since a
// sandbox joins one group.
type group struct {
	name     string
	networks []string // compose names, sorted
	subnet   netip.Prefix
	internal bool // every network in it is internal: no way out
	decl     *sandboxfile.Network
}

func (c *converter) note(subject, key, format string, args ...any) {
	c.notes = append(c.notes, convert.Note{Subject: subject, Key: key, Message: fmt.Sprintf(format, args...)})
}

func (c *converter) convert() (*Result, error) {
	c.out = &sandboxfile.File{}
	if c.project.Name != "" && c.project.Name != filepath.Base(c.opts.outDir) {
		c.out.Project = &sandboxfile.Project{Name: c.project.Name}
	}
	var services []string
	for _, s := range c.project.ServiceNames() {
		svc := c.project.Services[s]
		if img := imageOf(c.project.Name, svc); !validImage(img) {
			c.note(s, "image", "%q is not an image reference sbx can use: the service is left out", img)
			continue
		}
		services = append(services, s)
	}
	sort.Strings(services)
	c.names = make(map[string]string, len(services))
	used := map[string]bool{}
	for _, s := range services {
		n := sandboxfile.Name(s, "s-")
		for i := 2; used[n]; i++ {
			n = fmt.Sprintf("%s-%d", sandboxfile.Name(s, "s-"), i)
		}
		used[n] = true
		c.names[s] = n
		if n != s {
			c.note(s, "name", "renamed to %q: sandbox names are letters, digits, '_' and '-', starting with a letter or '_'", n)
		}
	}
	for _, name := range c.project.DisabledServiceNames() {
		svc := c.project.DisabledServices[name]
		c.note(name, "profiles", "not imported: its profiles (%s) are not active; pass --profile %s to include it", strings.Join(svc.Profiles, ", "), svc.Profiles[0])
	}
	c.networks(services)
	c.volNames = map[string]string{}
	for _, name := range services {
		c.out.Sandboxes = append(c.out.Sandboxes, c.service(c.project.Services[name]))
	}
	c.addresses(services)
	for _, name := range sortedKeys(c.project.Secrets) {
		c.note("", "secrets."+name, "no equivalent in sbx; pass the value in env or mount the file")
	}
	for _, name := range sortedKeys(c.project.Configs) {
		c.note("", "configs."+name, "no equivalent in sbx; mount the file instead")
	}
	convert.SortNotes(c.notes)
	c.out.Header = c.header()
	res := &Result{File: c.out, Notes: c.notes}
	if len(c.out.Sandboxes) == 0 {
		if len(c.project.DisabledServices) == 0 {
			return res, fmt.Errorf("%s: %w: it declares no services", displayNames(c.files), ErrNothingUsable)
		}
		return res, fmt.Errorf("%s: %w: no service is active; its services need a profile (--profile)", displayNames(c.files), ErrNothingUsable)
	}
	return res, nil
}

func (c *converter) header() []string {
	names := make([]string, len(c.files))
	for i, f := range c.files {
		names[i] = c.rel(f.Filename)
	}
	h := []string{
		"Imported from " + strings.Join(names, ", ") + " by 'sbx import compose'.",
		"Review it, then run 'sbx validate' and 'sbx plan'.",
	}
	if len(c.notes) > 0 {
		h = append(h, "", "Not carried over, or changed on the way:")
		for _, n := range c.notes {
			h = append(h, "  "+n.String())
		}
	}
	return h
}

// rel writes a host path relative to the output directory when it is below it.
func (c *converter) rel(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	r, err := filepath.Rel(c.opts.outDir, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	if r == "." {
		return "."
	}
	return "./" + filepath.ToSlash(r)
}

// --- networks ---

// networks builds the sbx groups: Compose networks joined by one service are merged, since a
// sandbox is in one group; each gets the subnet Compose declared or one chosen here.
func (c *converter) networks(services []string) {
	parent := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		if p, ok := parent[n]; ok && p != n {
			r := find(p)
			parent[n] = r
			return r
		}
		parent[n] = n
		return n
	}
	for _, name := range services {
		svc := c.project.Services[name]
		if svc.NetworkMode != "" {
			continue
		}
		nets := sortedKeys(svc.Networks)
		for _, n := range nets {
			find(n)
		}
		for _, n := range nets[min(1, len(nets)):] {
			a, b := find(nets[0]), find(n)
			if a != b {
				if b < a {
					a, b = b, a
				}
				parent[b] = a
			}
		}
	}
	comps := map[string][]string{}
	for n := range parent {
		r := find(n)
		comps[r] = append(comps[r], n)
	}
	roots := sortedKeys(comps)
	c.groups = map[string]*group{}
	var taken []netip.Prefix
	var list []*group
	for _, r := range roots {
		members := comps[r]
		sort.Strings(members)
		g := &group{name: sandboxfile.Name(strings.Join(members, "-"), "net-"), networks: members, internal: true}
		for _, m := range members {
			nc := c.project.Networks[m]
			if !nc.Internal {
				g.internal = false
			}
			for _, pool := range nc.Ipam.Config {
				p, err := netip.ParsePrefix(pool.Subnet)
				if err != nil || !p.Addr().Is4() {
					continue
				}
				if !g.subnet.IsValid() {
					g.subnet = p.Masked()
					taken = append(taken, g.subnet)
				} else if p.Masked() != g.subnet {
					c.note("", "networks."+m+".ipam", "subnet %s dropped: network %s is merged into group %q, which uses %s", p, m, g.name, g.subnet)
				}
			}
			if nc.Driver != "" && nc.Driver != "bridge" {
				c.note("", "networks."+m+".driver", "driver %q has no equivalent; sbx networks are local groups", nc.Driver)
			}
			if bool(nc.External) {
				c.note("", "networks."+m+".external", "external networks have no equivalent; group %q is created by sbx", g.name)
			}
			c.groups[m] = g
		}
		list = append(list, g)
	}
	// Subnets for the groups Compose left to its IPAM, from 10.89.0.0/16, clear of declared ones.
	next := 0
	for _, g := range list {
		if !g.subnet.IsValid() {
			for ; next < 256; next++ {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 89, byte(next), 0}), 24)
				if !overlapsAny(p, taken) {
					g.subnet = p
					next++
					break
				}
			}
		}
		decl := &sandboxfile.Network{Name: g.name, Subnet: g.subnet.String()}
		if len(g.networks) > 1 {
			decl.Comments = append(decl.Comments, fmt.Sprintf("Compose networks %s, merged: a service joins more than one of them, and a sandbox is in one group.", strings.Join(g.networks, ", ")),
				"Sandboxes in this group all reach each other; split it by hand if isolation between those networks mattered.")
			c.note("", "networks", "%s merged into one group %q (a sandbox joins one group)", strings.Join(g.networks, ", "), g.name)
		}
		g.decl = decl
		c.out.Networks = append(c.out.Networks, decl)
	}
}

func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// --- services ---

// mapped are the service keys this package maps, or reports itself in detail; any other key
// that is set is reported as having no equivalent.
var mapped = map[string]bool{
	"image": true, "build": true, "command": true, "entrypoint": true, "environment": true,
	"env_file": true, "working_dir": true, "user": true, "ports": true, "volumes": true,
	"networks": true, "network_mode": true, "depends_on": true, "healthcheck": true,
	"restart": true, "deploy": true, "cpus": true, "mem_limit": true, "ulimits": true,
	"stop_grace_period": true, "profiles": true, "pids_limit": true,
}

// mappedDeploy are the deploy keys mapped.
var mappedDeploy = map[string]bool{
	"resources.limits.cpus": true, "resources.limits.memory": true, "resources.limits.pids": true, "restart_policy.condition": true,
}

// unmappedHints explain the keys people most often miss.
var unmappedHints = map[string]string{
	"privileged":     "no equivalent: a sandbox never gets host privileges",
	"cap_add":        "no equivalent: capabilities inside the VM are the image's",
	"cap_drop":       "no equivalent",
	"devices":        "no equivalent: host devices are not passed into sandboxes",
	"secrets":        "no equivalent; pass the value in env or mount the file",
	"configs":        "no equivalent; mount the file instead",
	"labels":         "no equivalent",
	"container_name": "no equivalent: the sandbox's name is its block label",
	"hostname":       "no equivalent",
	"expose":         "no equivalent: sandboxes in a group reach every port of each other",
	"extra_hosts":    "no equivalent",
	"dns":            "no equivalent: sbx gives sandboxes its own resolver",
	"tmpfs":          "no equivalent",
	"logging":        "no equivalent: sbx keeps the console log (sbx logs)",
	"security_opt":   "no equivalent",
	"sysctls":        "no equivalent",
	"shm_size":       "no equivalent",
	"links":          "no equivalent: use the group's addresses (sandbox.NAME.ip)",
	"tty":            "no equivalent",
	"stdin_open":     "no equivalent",
	"init":           "no equivalent: sbx always runs its own init as PID 1",
	"platform":       "no equivalent: sbx pulls the image for this machine",
	"pull_policy":    "no equivalent: use sbx pull",
}

func (c *converter) service(svc types.ServiceConfig) *sandboxfile.Sandbox {
	name := svc.Name
	sb := &sandboxfile.Sandbox{Name: c.names[name]}
	c.unmapped(svc)

	sb.Image = imageOf(c.project.Name, svc)
	if svc.Build != nil {
		if svc.Image == "" {
			c.note(name, "build", "sbx does not build images: build it (docker compose build), then docker save it and use image = \"docker-archive:FILE.tar\", or push it and name it here; %q is the tag Compose gives it", sb.Image)
		} else {
			c.note(name, "build", "sbx does not build images: the image %q is used as it is", sb.Image)
		}
	}
	if svc.Entrypoint != nil {
		sb.Entrypoint = []string(svc.Entrypoint)
	}
	if svc.Command != nil {
		sb.Command = []string(svc.Command)
	}
	if wd := svc.WorkingDir; wd != "" {
		if strings.HasPrefix(wd, "/") {
			sb.Workdir = wd
		} else {
			c.note(name, "working_dir", "%q dropped: the working directory must be an absolute path", wd)
		}
	}
	sb.User = svc.User
	c.environment(svc, sb)
	c.resources(svc, sb)
	c.restart(svc, sb)
	if svc.StopGracePeriod != nil {
		sb.StopTimeout = time.Duration(*svc.StopGracePeriod).String()
	}
	if len(svc.Ulimits) > 0 {
		sb.Rlimits = map[string]string{}
		for _, k := range sortedKeys(svc.Ulimits) {
			u := svc.Ulimits[k]
			if !slices.Contains(rlimitNames, strings.ToUpper(k)) {
				c.note(svc.Name, "ulimits."+k, "not a Linux resource limit sbx knows: left out")
				continue
			}
			if u.Single == 0 && u.Hard >= 0 && (u.Soft < 0 || u.Soft > u.Hard) {
				c.note(svc.Name, "ulimits."+k, "soft limit %d is above the hard limit %d: left out", u.Soft, u.Hard)
				continue
			}
			if u.Single != 0 {
				sb.Rlimits[strings.ToUpper(k)] = rlimit(u.Single)
			} else {
				sb.Rlimits[strings.ToUpper(k)] = rlimit(u.Soft) + ":" + rlimit(u.Hard)
			}
		}
	}
	for _, dep := range sortedKeys(svc.DependsOn) {
		d := svc.DependsOn[dep]
		target, ok := c.names[dep]
		if !ok {
			c.note(name, "depends_on."+dep, "dropped: %s is not imported (not active, or optional)", dep)
			continue
		}
		sb.DependsOn = append(sb.DependsOn, target)
		if d.Condition == types.ServiceConditionCompletedSuccessfully {
			c.note(name, "depends_on."+dep+".condition", "service_completed_successfully has no equivalent: sbx waits for %s to be ready, not to finish", dep)
		}
		if d.Condition == types.ServiceConditionHealthy {
			if h := c.project.Services[dep].HealthCheck; h == nil || h.Disable {
				c.note(name, "depends_on."+dep+".condition", "%s has no healthcheck; sbx waits for it to be running", dep)
			}
		}
	}
	c.readiness(svc, sb)
	c.ports(svc, sb)
	c.volumes(svc, sb)
	c.network(svc, sb)
	return sb
}

// unmapped reports every key of the service that is set and not mapped, one note each.
func (c *converter) unmapped(svc types.ServiceConfig) {
	raw, err := json.Marshal(svc)
	if err != nil {
		return
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	for _, k := range sortedKeys(m) {
		if mapped[k] || empty(m[k]) {
			continue
		}
		hint := unmappedHints[k]
		if hint == "" {
			hint = "no equivalent in sbx"
		}
		c.note(svc.Name, k, "%s", hint)
	}
	if d, ok := m["deploy"].(map[string]any); ok {
		walk(d, "", func(path string, v any) {
			if mappedDeploy[path] || empty(v) {
				return
			}
			if path == "replicas" {
				if f, ok := v.(float64); ok && f == 1 {
					return
				}
				c.note(svc.Name, "deploy.replicas", "no equivalent: a sandbox is one instance")
				return
			}
			c.note(svc.Name, "deploy."+path, "no equivalent in sbx")
		})
	}
}

// imageOf is the service's image; for one that is only built, the tag Compose gives it.
func imageOf(project string, svc types.ServiceConfig) string {
	if svc.Image == "" && svc.Build != nil {
		return strings.ToLower(project + "-" + svc.Name + ":latest")
	}
	return svc.Image
}

// validImage reports whether lang accepts s as an image: a registry reference or a local
// source.
func validImage(s string) bool {
	_, err := imageref.Parse(s)
	return err == nil
}

// rlimitNames are the Linux resource limits lang knows.
var rlimitNames = []string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}

// rlimit writes one limit; Compose's -1 is unlimited.
func rlimit(n int) string {
	if n < 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func walk(m map[string]any, prefix string, f func(string, any)) {
	for _, k := range sortedKeys(m) {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := m[k].(map[string]any); ok && len(sub) > 0 {
			walk(sub, p, f)
			continue
		}
		f(p, m[k])
	}
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, e := range x {
			if !empty(e) {
				return false
			}
		}
		return true
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	}
	return false
}

// environment maps environment and env_file. An env_file that sbx reads the same way (no
// interpolation in it) stays a file reference; the rest is written out in env.
func (c *converter) environment(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	fromFiles := map[string]string{}
	for _, ef := range svc.EnvFiles {
		data, err := os.ReadFile(ef.Path)
		if err != nil {
			if !bool(ef.Required) {
				c.note(svc.Name, "env_file", "%s does not exist and is optional: left out", c.rel(ef.Path))
			}
			continue
		}
		if ef.Format != "" || strings.Contains(string(data), "$") {
			sb.Comments = append(sb.Comments, fmt.Sprintf("env has the values of %s written out (Compose interpolates that file; sbx reads env files literally).", c.rel(ef.Path)))
			continue
		}
		if filepath.IsAbs(c.rel(ef.Path)) {
			sb.Comments = append(sb.Comments, fmt.Sprintf("env has the values of %s written out: sbx reads env files inside the project only.", ef.Path))
			continue
		}
		vals, err := dotenv.UnmarshalBytesWithLookup(data, func(string) (string, bool) { return "", false })
		if err != nil {
			continue
		}
		for k, v := range vals {
			fromFiles[k] = v
		}
		sb.EnvFiles = append(sb.EnvFiles, c.rel(ef.Path))
	}
	for _, k := range sortedKeys(svc.Environment) {
		v := svc.Environment[k]
		if k == "" || strings.ContainsAny(k, "=\x00") {
			c.note(svc.Name, "environment", "%q cannot be a variable name (it has '=' or NUL): left out", k)
			continue
		}
		if v == nil {
			c.note(svc.Name, "environment."+k, "left out: it takes its value from the environment, where it is not set")
			continue
		}
		if fv, ok := fromFiles[k]; ok && fv == *v {
			continue
		}
		if sb.Env == nil {
			sb.Env = map[string]string{}
		}
		sb.Env[k] = *v
	}
}

func (c *converter) resources(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	cpus := float64(svc.CPUS)
	mem := int64(svc.MemLimit)
	if d := svc.Deploy; d != nil && d.Resources.Limits != nil {
		if d.Resources.Limits.NanoCPUs > 0 {
			cpus = float64(d.Resources.Limits.NanoCPUs)
		}
		if d.Resources.Limits.MemoryBytes > 0 {
			mem = int64(d.Resources.Limits.MemoryBytes)
		}
	}
	if cpus > 0 {
		n := int(math.Ceil(cpus - 1e-6))
		n = max(1, min(n, 255))
		sb.CPUs = n
		if float64(n) != math.Round(cpus*1000)/1000 {
			sb.Comments = append(sb.Comments, fmt.Sprintf("Compose limited it to %g CPUs; a sandbox has whole vCPUs.", cpus))
		}
	}
	pids := svc.PidsLimit
	if d := svc.Deploy; d != nil && d.Resources.Limits != nil && d.Resources.Limits.Pids != 0 {
		pids = d.Resources.Limits.Pids
	}
	switch {
	case pids > int64(lang.MaxPids):
		sb.Pids = lang.MaxPids
	case pids > 0:
		sb.Pids = int(pids)
	case pids < 0:
		c.note(svc.Name, "pids_limit", "unlimited has no equivalent: sbx's default of %d processes applies; set pids up to %d", lang.DefaultPids, lang.MaxPids)
	}
	if mem > 0 {
		mib := (mem + (1<<20 - 1)) >> 20
		sb.Memory = sandboxfile.Memory(mib)
		if mib<<20 != mem {
			sb.Comments = append(sb.Comments, fmt.Sprintf("Compose limited its memory to %d bytes, rounded up to whole MiB.", mem))
		}
	}
}

func (c *converter) restart(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	policy := svc.Restart
	if policy == "" && svc.Deploy != nil && svc.Deploy.RestartPolicy != nil {
		switch svc.Deploy.RestartPolicy.Condition {
		case "none":
			policy = "no"
		case "on-failure":
			policy = "on-failure"
		case "any", "":
			policy = "always"
		}
	}
	switch {
	case policy == "" || policy == "no":
	case policy == "always":
		sb.Restart = "always"
	case policy == "unless-stopped":
		sb.Restart = "always"
		sb.Comments = append(sb.Comments, "restart: unless-stopped in Compose; sbx restarts it until sbx down or sbx stop, the same thing.")
	case strings.HasPrefix(policy, "on-failure"):
		sb.Restart = "on-failure"
		if _, n, ok := strings.Cut(policy, ":"); ok {
			c.note(svc.Name, "restart", "the limit of %s retries has no equivalent: sbx retries with a growing delay", n)
		}
	default:
		c.note(svc.Name, "restart", "%q is not a known policy: left at sbx's default (no)", policy)
	}
}

// --- readiness ---

// readiness derives a ready block from the healthcheck: curl/wget of a URL becomes an http
// probe, a known database's own check a tcp probe on its port.
func (c *converter) readiness(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	h := svc.HealthCheck
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return
	}
	var cmd string
	switch h.Test[0] {
	case "CMD-SHELL":
		cmd = strings.Join(h.Test[1:], " ")
	case "CMD":
		cmd = strings.Join(h.Test[1:], " ")
	default:
		cmd = strings.Join(h.Test, " ")
	}
	r := probeFor(cmd)
	if r == nil {
		c.note(svc.Name, "healthcheck", "%q cannot be checked from the host; add a ready block (tcp, http or log) by hand", cmd)
		return
	}
	r.Comments = []string{"From the healthcheck: " + cmd}
	if h.Interval != nil {
		iv := time.Duration(*h.Interval)
		r.Interval = iv.String()
		retries := uint64(3)
		if h.Retries != nil {
			retries = *h.Retries
		}
		total := iv * time.Duration(retries)
		if h.StartPeriod != nil {
			total += time.Duration(*h.StartPeriod)
		}
		if total > 0 {
			r.Timeout = total.String()
		}
	}
	sb.Ready = r
}

// defaultPorts are the ports of the database checks that take their port as a flag.
var checkTools = []struct {
	name  string
	port  int
	flags []string
}{
	{"pg_isready", 5432, []string{"-p", "--port"}},
	{"mysqladmin", 3306, []string{"-P", "--port"}},
	{"mariadb-admin", 3306, []string{"-P", "--port"}},
	{"healthcheck.sh", 3306, []string{"--port"}}, // the MariaDB image's
	{"redis-cli", 6379, []string{"-p"}},
	{"valkey-cli", 6379, []string{"-p"}},
	{"mongosh", 27017, []string{"--port"}},
	{"mongo", 27017, []string{"--port"}},
	{"cqlsh", 9042, nil},
	{"rabbitmq-diagnostics", 5672, nil},
	{"nats-server", 4222, nil},
	{"memcached", 11211, nil},
}

func probeFor(cmd string) *sandboxfile.Ready {
	fields := strings.Fields(cmd)
	for i, f := range fields {
		base := filepath.Base(f)
		if base == "curl" || base == "wget" {
			for _, a := range fields[i+1:] {
				a = strings.Trim(a, `'"`)
				if u, err := url.Parse(a); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
					return &sandboxfile.Ready{HTTP: a}
				}
			}
		}
		if (base == "nc" || base == "netcat") && i+2 < len(fields) {
			if p, err := strconv.Atoi(fields[len(fields)-1]); err == nil && p > 0 && p < 65536 {
				return &sandboxfile.Ready{TCP: p}
			}
		}
		for _, t := range checkTools {
			if base != t.name {
				continue
			}
			port := t.port
			for j := i + 1; j < len(fields); j++ {
				for _, fl := range t.flags {
					if fields[j] == fl && j+1 < len(fields) {
						if p, err := strconv.Atoi(fields[j+1]); err == nil {
							port = p
						}
					} else if v, ok := strings.CutPrefix(fields[j], fl+"="); ok {
						if p, err := strconv.Atoi(v); err == nil {
							port = p
						}
					}
				}
			}
			if port > 0 && port < 65536 {
				return &sandboxfile.Ready{TCP: port}
			}
		}
	}
	return nil
}

// --- ports, volumes, network ---

func (c *converter) ports(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	for i, p := range svc.Ports {
		key := fmt.Sprintf("ports[%d]", i)
		proto := strings.ToLower(p.Protocol)
		if proto != "" && proto != "tcp" && proto != "udp" {
			c.note(svc.Name, key, "protocol %s has no equivalent: sbx publishes tcp and udp", proto)
			continue
		}
		if p.Target == 0 || p.Target > 65535 {
			continue
		}
		port := &sandboxfile.Port{Guest: int(p.Target), Protocol: proto}
		switch pub := p.Published; {
		case pub == "":
			port.Host = int(p.Target)
			port.Comments = append(port.Comments, "Compose publishes this port on a random host port; sbx uses the same number as inside.")
		default:
			first, _, ranged := strings.Cut(pub, "-")
			n, err := strconv.Atoi(first)
			if err != nil || n < 1 || n > 65535 {
				c.note(svc.Name, key, "published port %q is not a port number: left out", pub)
				continue
			}
			port.Host = n
			if ranged {
				port.Comments = append(port.Comments, fmt.Sprintf("Compose picks a free host port from %s; sbx takes the first.", pub))
			}
		}
		switch p.HostIP {
		case "":
			port.HostIP = "127.0.0.1"
			port.Comments = append(port.Comments, "Compose publishes on 0.0.0.0 (every interface) by default; sbx keeps it to this machine. Set host_ip = \"0.0.0.0\" to share it.")
		default:
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				c.note(svc.Name, key, "host_ip %q is not an IP address: left out", p.HostIP)
				continue
			}
			port.HostIP = p.HostIP
		}
		sb.Ports = append(sb.Ports, port)
	}
}

func (c *converter) volumes(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	for i, v := range svc.Volumes {
		key := fmt.Sprintf("volumes[%d]", i)
		if !strings.HasPrefix(v.Target, "/") {
			c.note(svc.Name, key, "target %q is not an absolute path: left out", v.Target)
			continue
		}
		switch v.Type {
		case types.VolumeTypeBind:
			if why := convert.SensitiveHostPath(v.Source, c.opts.workingDir); why != "" {
				c.note(svc.Name, key, "%s not mounted: %s", v.Source, why)
				continue
			}
			m := &sandboxfile.Mount{Source: c.rel(v.Source), Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Bind != nil && v.Bind.SELinux != "" {
				c.note(svc.Name, key, "SELinux relabelling (:%s) has no equivalent", v.Bind.SELinux)
			}
			if _, err := os.Stat(v.Source); err != nil {
				m.Comments = append(m.Comments, "Compose creates a missing source directory; sbx does not: create "+c.rel(v.Source)+" before sbx up.")
			}
			sb.Mounts = append(sb.Mounts, m)
		case types.VolumeTypeVolume:
			if v.Source == "" {
				c.note(svc.Name, key, "anonymous volume at %s has no equivalent: the sandbox's writable layer keeps it until sbx down", v.Target)
				continue
			}
			vol := c.volume(v.Source)
			m := &sandboxfile.Mount{Volume: vol, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Volume != nil && v.Volume.NoCopy {
				c.note(svc.Name, key, "nocopy has no equivalent: sbx starts a new volume empty")
			}
			if v.Volume != nil && v.Volume.Subpath != "" {
				c.note(svc.Name, key, "subpath %q has no equivalent: the whole volume is mounted", v.Volume.Subpath)
			}
			sb.Mounts = append(sb.Mounts, m)
		default:
			c.note(svc.Name, key, "%s mount at %s has no equivalent", v.Type, v.Target)
		}
	}
}

// volume declares the named volume (once) and returns its sbx name.
func (c *converter) volume(name string) string {
	if n, ok := c.volNames[name]; ok {
		return n
	}
	n := sandboxfile.Name(name, "vol-")
	c.volNames[name] = n
	decl := &sandboxfile.Volume{Name: n}
	if vc, ok := c.project.Volumes[name]; ok {
		if bool(vc.External) {
			decl.Comments = append(decl.Comments, fmt.Sprintf("Compose volume %s is external (made outside Compose); sbx makes its own, empty.", name))
			c.note("", "volumes."+name+".external", "no equivalent: sbx creates volume %q, empty", n)
		}
		if vc.Driver != "" && vc.Driver != "local" {
			c.note("", "volumes."+name+".driver", "driver %q has no equivalent: sbx volumes are local", vc.Driver)
		}
		if len(vc.DriverOpts) > 0 {
			c.note("", "volumes."+name+".driver_opts", "no equivalent: sbx volumes are plain directories")
		}
	}
	if n != name {
		c.note("", "volumes."+name, "renamed to %q: volume names are letters, digits, '_' and '-'", n)
	}
	c.out.Volumes = append(c.out.Volumes, decl)
	return n
}

// addresses rewrites the host names of env values: in Compose a service reaches another by
// its name (or a network alias), in sbx by its address, sandbox.NAME.ip, which also makes the
// dependency explicit. Only names of sandboxes in the same group are rewritten: others are not
// reachable either way.
func (c *converter) addresses(services []string) {
	group := map[string]string{}
	for _, sb := range c.out.Sandboxes {
		if sb.Network != nil && sb.Network.Scope != "none" {
			group[sb.Name] = sb.Network.Group
		}
	}
	hosts := map[string]string{}
	for _, svc := range services {
		hosts[svc] = c.names[svc]
		for _, nc := range c.project.Services[svc].Networks {
			if nc != nil {
				for _, a := range nc.Aliases {
					if _, taken := hosts[a]; !taken {
						hosts[a] = c.names[svc]
					}
				}
			}
		}
	}
	for _, sb := range c.out.Sandboxes {
		g := group[sb.Name]
		if g == "" {
			continue
		}
		reach := func(target string) bool { return target != sb.Name && group[target] == g }
		for _, k := range sortedKeys(sb.Env) {
			t := hostTemplate(k, sb.Env[k], hosts, reach)
			if t == nil {
				continue
			}
			if sb.EnvRefs == nil {
				sb.EnvRefs = map[string]sandboxfile.Template{}
			}
			delete(sb.Env, k)
			sb.EnvRefs[k] = t
		}
		if len(sb.EnvRefs) > 0 {
			sb.Comments = append(sb.Comments, "Compose's service names used as host names are sandbox.NAME.ip here: sandboxes reach each other by address.")
		}
	}
}

// hostTemplate finds the host names in an env value: in a URL or address (//db, @db, db:5432),
// or as the whole value of a variable whose name says it holds a host (DB_HOST=db). It
// returns nil when there is none.
func hostTemplate(key, v string, hosts map[string]string, reach func(string) bool) sandboxfile.Template {
	if target, ok := hosts[v]; ok && reach(target) && hostKey(key) {
		return sandboxfile.Template{{IPOf: target}}
	}
	type match struct {
		at, end int
		target  string
	}
	var found []match
	for h, target := range hosts {
		if !reach(target) {
			continue
		}
		for from := 0; ; {
			i := strings.Index(v[from:], h)
			if i < 0 {
				break
			}
			i += from
			end := i + len(h)
			from = end
			before := i == 0 || strings.ContainsRune("/@=,; \"'(", rune(v[i-1]))
			after := end == len(v) || strings.ContainsRune(":/,; \"')?", rune(v[end]))
			urlish := (i >= 2 && v[i-2:i] == "//") || (i >= 1 && v[i-1] == '@') || (end+1 < len(v) && v[end] == ':' && v[end+1] >= '0' && v[end+1] <= '9')
			if before && after && urlish {
				found = append(found, match{i, end, target})
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(a, b int) bool {
		return found[a].at < found[b].at || found[a].at == found[b].at && found[a].end > found[b].end
	})
	var t sandboxfile.Template
	pos := 0
	for _, m := range found {
		if m.at < pos {
			continue
		}
		if m.at > pos {
			t = append(t, sandboxfile.Part{Lit: v[pos:m.at]})
		}
		t = append(t, sandboxfile.Part{IPOf: m.target})
		pos = m.end
	}
	if pos < len(v) {
		t = append(t, sandboxfile.Part{Lit: v[pos:]})
	}
	return t
}

// hostKey reports whether an environment variable's name says its value is a host.
func hostKey(k string) bool {
	u := strings.ToUpper(k)
	for _, w := range []string{"HOST", "ADDR", "SERVER", "ENDPOINT", "BROKER", "NODES", "PEERS"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return false
}

func (c *converter) network(svc types.ServiceConfig, sb *sandboxfile.Sandbox) {
	switch mode := svc.NetworkMode; {
	case mode == "none":
		sb.Network = &sandboxfile.NetworkAttach{Scope: "none"}
		return
	case mode == "host":
		c.note(svc.Name, "network_mode", "host has no equivalent: a sandbox has its own network; it gets scope \"any\" (unrestricted) instead")
		sb.Network = &sandboxfile.NetworkAttach{Scope: "any"}
		return
	case mode != "":
		c.note(svc.Name, "network_mode", "%q has no equivalent: a sandbox has its own network", mode)
		return
	}
	nets := sortedKeys(svc.Networks)
	if len(nets) == 0 {
		return
	}
	g := c.groups[nets[0]]
	if g == nil {
		return
	}
	att := &sandboxfile.NetworkAttach{Scope: "public", Group: g.name}
	if g.internal {
		att.Scope = "group"
	}
	for _, n := range nets {
		nc := svc.Networks[n]
		if nc == nil || nc.Ipv4Address == "" {
			continue
		}
		ip, err := netip.ParseAddr(nc.Ipv4Address)
		if err != nil || !g.subnet.Contains(ip) {
			c.note(svc.Name, "networks."+n+".ipv4_address", "%s is outside group %q's subnet %s: sbx allocates one", nc.Ipv4Address, g.name, g.subnet)
			continue
		}
		att.IP = ip.String()
	}
	sb.Network = att
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
