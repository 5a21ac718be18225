package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime/ns"
	"github.com/sbx-dev/sbx/runtime/nsnet"
)

// nsDriver runs sandboxes in Linux namespaces (runtime/ns): weaker isolation than a VM, for
// hosts without KVM or libkrun, chosen explicitly.
type nsDriver struct {
	exe string
	log *slog.Logger

	// proxies publish the ports of the running payload; they live in the supervisor and are
	// closed by Cleanup.
	mu      sync.Mutex
	proxies []*nsnet.Proxy
	cancel  context.CancelFunc
	handle  *nsnet.Handle       // the network of the running payload
	dns     *nsnet.DNSForwarder // answers public and any sandboxes' queries on their gateway
}

// DialGuest connects to a port of the running sandbox: its group IP, or inside its network
// namespace, never through the published port's proxy.
func (d *nsDriver) DialGuest(ctx context.Context, spec *RunSpec, port int) (net.Conn, error) {
	d.mu.Lock()
	h := d.handle
	d.mu.Unlock()
	if h == nil {
		return nil, errors.New("the sandbox is not running")
	}
	return h.Dialer("tcp", port)(ctx)
}

func (*nsDriver) Name() string { return "ns" }

// Preflight with a nil spec checks the machine (privileges, overlayfs, cgroups, networking);
// with a spec, what that sandbox needs (its mount sources).
func (d *nsDriver) Preflight(ctx context.Context, spec *RunSpec) error {
	if spec != nil {
		for _, m := range spec.Sandbox.Mounts {
			if _, err := os.Stat(m.Source); err != nil {
				return fmt.Errorf("sandbox %s: mount source %s does not exist: create it or fix the mount", spec.Sandbox.Name, m.Source)
			}
		}
		return nil
	}
	var msgs []string
	for _, p := range ns.Preflight() {
		if p.Fatal {
			msgs = append(msgs, p.String())
		} else {
			d.log.Info("ns driver runs degraded", "problem", p.String())
		}
	}
	for _, p := range nsnet.Preflight(ctx) {
		if p.Fatal {
			msgs = append(msgs, p.Check+": "+p.Detail+" ("+p.Fix+")")
		} else {
			d.log.Info("ns driver networking runs degraded", "problem", p.Detail)
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("the ns driver cannot run here:\n  %s", strings.Join(msgs, "\n  "))
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
	}
	for _, m := range sb.Mounts {
		cfg.Mounts = append(cfg.Mounts, ns.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, r := range sb.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, ns.Rlimit{Resource: r.Number, Soft: r.Soft, Hard: r.Hard})
	}
	return cfg
}

func (d *nsDriver) Start(ctx context.Context, spec *RunSpec, console io.Writer) (inst Instance, err error) {
	sb := &spec.Sandbox
	cfg := d.nsConfig(spec)
	if err := os.MkdirAll(writableDir(spec.Dir), 0o755); err != nil {
		return nil, err
	}
	// The network first: the sandbox joins a namespace that is already wired for its scope.
	h, err := nsnet.Setup(ctx, nsnet.Net{
		Project: spec.Project, Name: sb.Name, Scope: sb.Network.Scope, Group: sb.Network.Group,
		Subnet: spec.Subnet, IP: sb.Network.IP,
	})
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	defer func() {
		if err != nil {
			_ = d.Cleanup(context.WithoutCancel(ctx), spec)
		}
	}()
	d.mu.Lock()
	d.handle = h
	d.mu.Unlock()
	cfg.NetNS = h.NetNSPath()
	cfg.Hosts = hostsFile(spec, h.IP())
	if err := d.publish(spec, h); err != nil {
		return nil, err
	}
	cfg.ResolvConf = nsnet.ResolvConf(sb.Network.Scope, d.serveDNS(spec, h, console))
	p, err := ns.Start(ctx, []string{d.exe, NSChildCommand}, cfg, console, console)
	if err != nil {
		return nil, err
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(console, "[sbx] warning: %s\n", w)
	}
	return nsInstance{p}, nil
}

// publish starts one proxy per port: host_ip:host on the host to the guest port.
func (d *nsDriver) publish(spec *RunSpec, h *nsnet.Handle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for _, port := range spec.Sandbox.Ports {
		proto := port.Protocol
		if proto == "" {
			proto = "tcp"
		}
		addr := net.JoinHostPort(port.HostIP, strconv.Itoa(port.Host))
		px, err := nsnet.ListenProxy(ctx, proto, addr, h.Dialer(proto, port.Guest), nsnet.WithLogger(d.log))
		if err != nil {
			return fmt.Errorf("publish %s/%s: %w", addr, proto, err)
		}
		d.proxies = append(d.proxies, px)
		go func() { _ = px.Serve(ctx) }()
	}
	return nil
}

// serveDNS starts the sandbox's DNS forwarder on its gateway when its scope reaches the
// outside, and returns the handle to name in resolv.conf, or nil: then the host's resolvers
// are listed instead (public sandboxes cannot reach private ones).
func (d *nsDriver) serveDNS(spec *RunSpec, h *nsnet.Handle, console io.Writer) *nsnet.Handle {
	if s := spec.Sandbox.Network.Scope; s != nsnet.ScopePublic && s != nsnet.ScopeAny {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := nsnet.ServeDNS(context.Background(), h, nsnet.DNSUpstreams(), nsnet.WithDNSLogger(d.log))
	if err != nil {
		fmt.Fprintf(console, "[sbx] warning: no DNS forwarder for this sandbox: %v\n", err)
		return nil
	}
	d.dns = f
	return h
}

func (d *nsDriver) Cleanup(ctx context.Context, spec *RunSpec) error {
	d.mu.Lock()
	if d.dns != nil {
		_ = d.dns.Close()
		d.dns = nil
	}
	for _, px := range d.proxies {
		_ = px.Close()
	}
	d.proxies = nil
	d.handle = nil
	if d.cancel != nil {
		d.cancel()
		d.cancel = nil
	}
	d.mu.Unlock()
	err := errors.Join(
		ns.Cleanup(d.nsConfig(spec)),
		nsnet.Teardown(ctx, spec.Project, spec.Sandbox.Name),
	)
	removeEmptyCgroupParents(cgroupName(spec.Project))
	return err
}

// removeEmptyCgroupParents removes the project's cgroup (sbx/<project>) and sbx's own in every
// hierarchy once no sandbox cgroup is left in them; rmdir refuses a cgroup that still has
// children, so a sandbox starting meanwhile keeps its parents.
func removeEmptyCgroupParents(project string) {
	for _, pattern := range []string{"/sys/fs/cgroup/*/sbx/", "/sys/fs/cgroup/sbx/"} {
		dirs, _ := filepath.Glob(pattern + project)
		for _, d := range dirs {
			_ = os.Remove(d)
			_ = os.Remove(filepath.Dir(d))
		}
	}
}

type nsInstance struct{ p *ns.Process }

func (i nsInstance) Pid() int                   { return i.p.Pid() }
func (i nsInstance) Signal(sig os.Signal) error { return i.p.Signal(sig) }
func (i nsInstance) Wait() Exit {
	st, err := i.p.Wait()
	ex := Exit{Code: st.Code, At: time.Now()}
	if st.Signal != 0 {
		ex.Code, ex.Signal = -1, unix.SignalName(st.Signal)
	}
	if err != nil {
		ex.Err = err.Error()
	}
	return ex
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

// hostsFile is the sandbox's /etc/hosts: localhost, itself, and the other sandboxes of its
// group by name.
func hostsFile(spec *RunSpec, ip netip.Addr) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ip.IsValid() {
		fmt.Fprintf(&b, "%s\t%s\n", ip, spec.Sandbox.Name)
	} else {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", spec.Sandbox.Name)
	}
	for _, name := range sortedKeys(spec.Peers) {
		fmt.Fprintf(&b, "%s\t%s\n", spec.Peers[name], name)
	}
	return b.String()
}
