package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/ns"
)

// nsDriver runs sandboxes in Linux namespaces (runtime/ns): weaker isolation than a VM, for
// hosts without KVM or libkrun, chosen explicitly.
type nsDriver struct {
	exe string
	log *slog.Logger
}

func (*nsDriver) Name() string { return "ns" }

func (d *nsDriver) Preflight(ctx context.Context, spec *RunSpec) error {
	var msgs []string
	for _, p := range ns.Preflight() {
		if p.Fatal {
			msgs = append(msgs, p.String())
		} else {
			d.log.Info("ns driver runs degraded", "problem", p.String())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("the ns driver cannot run here:\n  %s", strings.Join(msgs, "\n  "))
	}
	if spec != nil {
		for _, m := range spec.Sandbox.Mounts {
			if _, err := os.Stat(m.Source); err != nil {
				return fmt.Errorf("sandbox %s: mount source %s does not exist: create it or fix the mount", spec.Sandbox.Name, m.Source)
			}
		}
	}
	return nil
}

// nsConfig turns a run spec into the namespace child's config.
func (d *nsDriver) nsConfig(spec *RunSpec) ns.Config {
	sb := &spec.Sandbox
	cfg := ns.Config{
		Name:         sb.Name,
		Hostname:     sb.Name,
		Layers:       spec.Layers,
		RootDir:      spec.RootDir,
		UpperDir:     filepath.Join(writableDir(spec.Dir), "upper"),
		WorkDir:      filepath.Join(writableDir(spec.Dir), "work"),
		Argv:         spec.Argv,
		Env:          spec.Env,
		Workdir:      spec.Workdir,
		User:         spec.User,
		CPUs:         sb.CPUs,
		MemoryMiB:    sb.MemoryMiB,
		CgroupParent: "/sbx/" + cgroupName(spec.Project),
		Hosts:        hostsFile(spec),
		ResolvConf:   "nameserver 127.0.0.1\n",
	}
	for _, m := range sb.Mounts {
		cfg.Mounts = append(cfg.Mounts, ns.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, r := range sb.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, ns.Rlimit{Resource: r.Number, Soft: r.Soft, Hard: r.Hard})
	}
	return cfg
}

func (d *nsDriver) Start(ctx context.Context, spec *RunSpec, console io.Writer) (Instance, error) {
	if err := scopeSupported(spec); err != nil {
		return nil, err
	}
	cfg := d.nsConfig(spec)
	if err := os.MkdirAll(writableDir(spec.Dir), 0o755); err != nil {
		return nil, err
	}
	p, err := ns.Start(ctx, []string{d.exe, NSChildCommand}, cfg, console, console)
	if err != nil {
		return nil, err
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(console, "[sbx] warning: %s\n", w)
	}
	return nsInstance{p}, nil
}

func (d *nsDriver) Cleanup(ctx context.Context, spec *RunSpec) error {
	return ns.Cleanup(d.nsConfig(spec))
}

type nsInstance struct{ p *ns.Process }

func (i nsInstance) Pid() int                   { return i.p.Pid() }
func (i nsInstance) Signal(sig os.Signal) error { return i.p.Signal(sig) }
func (i nsInstance) Wait() Exit {
	st, err := i.p.Wait()
	ex := Exit{Code: st.Code, At: time.Now()}
	if st.Signal != 0 {
		ex.Code, ex.Signal = -1, st.Signal.String()
	}
	if err != nil {
		ex.Err = err.Error()
	}
	return ex
}

// scopeSupported refuses the network scopes the ns driver cannot enforce yet: a scope is never
// silently widened.
func scopeSupported(spec *RunSpec) error {
	if s := spec.Sandbox.Network.Scope; s != lang.ScopeNone {
		return fmt.Errorf("network scope %q is not available on the ns driver yet: only \"none\" (loopback only) is; set network { scope = \"none\" }", s)
	}
	if len(spec.Sandbox.Ports) > 0 {
		return errors.New("ports are not published by the ns driver yet")
	}
	return nil
}

// cgroupName makes a project name safe as one cgroup path element.
func cgroupName(project string) string {
	if project == "" {
		return "default"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '.' && len(project) <= 2 {
			return '_'
		}
		return r
	}, project)
}

// hostsFile is the sandbox's /etc/hosts: itself, localhost, and the sandboxes of its group.
func hostsFile(spec *RunSpec) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ip := spec.Sandbox.Network.IP; ip.IsValid() {
		fmt.Fprintf(&b, "%s\t%s\n", ip, spec.Sandbox.Name)
	} else {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", spec.Sandbox.Name)
	}
	return b.String()
}
