package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/diskfile"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
)

// ImageConfig is the part of an OCI image config that decides how a sandbox runs.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// defaultPath is the PATH a sandbox gets when neither its image nor its spec sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrNoCommand means neither the Sandboxfile nor the image says what to run.
var ErrNoCommand = errors.New("no command to run: the image has no ENTRYPOINT or CMD; set command (or entrypoint) in the Sandboxfile")

// ResolveProcess merges a sandbox's declared process with its image's config, the way
// container engines do: a declared entrypoint replaces the image's ENTRYPOINT and drops its
// CMD; a declared command replaces CMD only; env is the image's Env with the declared values
// over it; workdir and user fall back to the image's.
func ResolveProcess(sb *lang.Sandbox, img ImageConfig) (argv, env []string, workdir, user string, err error) {
	switch {
	case sb.Entrypoint != nil:
		argv = append(append([]string{}, sb.Entrypoint...), sb.Command...)
	case sb.Command != nil:
		argv = append(append([]string{}, img.Entrypoint...), sb.Command...)
	default:
		argv = append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, nil, "", "", ErrNoCommand
	}
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	keys := make([]string, 0, len(sb.Env))
	for k := range sb.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set(k, sb.Env[k])
	}
	if _, ok := vars["PATH"]; !ok {
		env = append(env, defaultPath)
	}
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	workdir = sb.Workdir
	if workdir == "" {
		workdir = img.WorkingDir
	}
	if workdir == "" {
		workdir = "/"
	}
	user = sb.User
	if user == "" {
		user = img.User
	}
	return argv, env, workdir, user, nil
}

// Gateway is the first host address of a subnet: the bridge's address on the host side.
func Gateway(p netip.Prefix) (netip.Addr, error) {
	if !p.IsValid() {
		return netip.Addr{}, fmt.Errorf("no subnet")
	}
	return p.Masked().Addr().Next(), nil
}

// ProjectID identifies a project on this machine: its name and a short hash of its directory,
// so two directories both called "app" never share a cgroup, a network or a teardown.
func ProjectID(name, dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	if len(name) > maxProjectName {
		// Host-side names have limits (nsnet.MaxProjectLen); the hash keeps it unique.
		name = strings.ToValidUTF8(name[:maxProjectName], "")
	}
	return name + "-" + hex.EncodeToString(sum[:4])
}

// maxProjectName is how much of a project's name its ID keeps.
const maxProjectName = 64

// BuildRunSpec resolves what a driver needs to run sb from cfg: the declaration merged with
// the image's config, the group's subnet and peers, and the probe in guest terms.
func BuildRunSpec(p *Project, driver string, cfg *lang.Config, sb *lang.Sandbox, img *Image, generation int) (*spec.RunSpec, error) {
	argv, env, workdir, user, err := ResolveProcess(sb, img.Config)
	if err != nil {
		return nil, err
	}
	scope, err := spec.ParseScope(sb.Network.Scope)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", sb.Name, err)
	}
	s := &spec.RunSpec{
		Version: spec.Version, Project: p.ID(), Name: sb.Name, Dir: p.SandboxDir(sb.Name),
		Driver: driver, Generation: generation,
		Image:   spec.Image{Ref: sb.Image, Digest: img.Digest, Layers: img.Layers},
		Process: spec.Process{Argv: argv, Env: env, Workdir: workdir, User: user, Hostname: sb.Name},
		Resources: spec.Resources{
			CPUs: sb.CPUs, MemoryMiB: sb.MemoryMiB, Pids: sandboxPids(sb),
		},
		Network:     spec.Network{Scope: scope, Group: sb.Network.Group, IP: sb.Network.IP},
		Restart:     spec.Restart(sb.Restart),
		StopTimeout: sb.StopTimeout,
	}
	if img.RootDir != "" {
		s.Image.Layers = []string{img.RootDir}
	}
	for _, r := range sb.Rlimits {
		s.Resources.Rlimits = append(s.Resources.Rlimits, spec.Rlimit{Name: r.Resource, Resource: r.Number, Soft: r.Soft, Hard: r.Hard})
	}
	for _, m := range sb.Mounts {
		src := m.Source
		if m.Volume != "" {
			if src, err = p.EnsureVolume(m.Volume); err != nil {
				return nil, fmt.Errorf("sandbox %s: %w", sb.Name, err)
			}
		}
		s.Mounts = append(s.Mounts, spec.Mount{Source: src, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, pt := range sb.Ports {
		proto, err := spec.ParseProtocol(pt.Protocol)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", sb.Name, err)
		}
		s.Ports = append(s.Ports, spec.Port{HostIP: pt.HostIP, Host: pt.Host, Guest: pt.Guest, Protocol: proto})
	}
	for _, n := range cfg.Networks {
		if n.Name == sb.Network.Group {
			s.Network.Subnet = n.Subnet
		}
	}
	if sb.Network.Group != "" {
		for _, peer := range cfg.Sandboxes {
			if peer.Name != sb.Name && peer.Network.Group == sb.Network.Group && peer.Network.IP.IsValid() {
				if s.Network.Peers == nil {
					s.Network.Peers = map[string]netip.Addr{}
				}
				s.Network.Peers[peer.Name] = peer.Network.IP
			}
		}
	}
	if r := sb.Ready; r != nil {
		ready, err := readySpec(r)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: ready: %w", sb.Name, err)
		}
		s.Ready = ready
	}
	return s, nil
}

// sandboxPids is the sandbox's process limit.
func sandboxPids(sb *lang.Sandbox) int {
	if sb.Pids > 0 {
		return sb.Pids
	}
	return lang.DefaultPids
}

// readySpec turns a declared probe into guest terms: an http probe's URL names a port of the
// sandbox itself (its host part is only the Host header), as a tcp probe's port does.
func readySpec(r *lang.Ready) (*spec.Ready, error) {
	out := &spec.Ready{TCP: r.TCP, Log: r.Log, Timeout: r.Timeout, Interval: r.Interval}
	if r.HTTP != "" {
		u, err := url.Parse(r.HTTP)
		if err != nil {
			return nil, fmt.Errorf("http %q: %w", r.HTTP, err)
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("http %q: only http:// URLs can be probed", r.HTTP)
		}
		port := 80
		if ps := u.Port(); ps != "" {
			port, err = strconv.Atoi(ps)
			if err != nil || port < 1 || port > 65535 {
				return nil, fmt.Errorf("http %q: bad port %q", r.HTTP, ps)
			}
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		out.HTTP = &spec.HTTPProbe{Port: port, Path: path, Host: u.Host}
	}
	return out, nil
}

// runSpecPath is where the supervisor finds its spec.
func runSpecPath(dir string) string { return filepath.Join(dir, "run.json") }

// WriteRunSpec stores s in its sandbox directory for the supervisor. The file is 0600: the
// environment may hold sensitive values.
func WriteRunSpec(s *spec.RunSpec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the run spec of %s: %w", s.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.Dir, err)
	}
	if err := state.EnsureDir(s.Dir); err != nil {
		return err
	}
	if err := diskfile.WriteAtomic(runSpecPath(s.Dir), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the run spec of %s: %w", s.Name, err)
	}
	return nil
}

// ReadRunSpec reads the spec a supervisor was started with.
func ReadRunSpec(dir string) (*spec.RunSpec, error) {
	b, err := state.ReadFile(runSpecPath(dir))
	if err != nil {
		return nil, err
	}
	var s spec.RunSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read %s: %w", runSpecPath(dir), err)
	}
	if s.Version != spec.Version {
		return nil, fmt.Errorf("read %s: %w", runSpecPath(dir), errOldRunSpec)
	}
	return &s, nil
}

// errOldRunSpec is a run.json of another sbx version: the sandbox must be started again.
var errOldRunSpec = errors.New("written by another version of sbx; 'sbx up' starts the sandbox again")
