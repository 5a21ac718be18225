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

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/ns"
	"github.com/sbx-dev/sbx/runtime/nsnet"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
)

// nsDriver runs sandboxes in Linux namespaces (runtime/ns): weaker isolation than a VM, for
// hosts without KVM or libkrun, chosen explicitly.
type nsDriver struct {
	exe string
	log *slog.Logger
}

func (*nsDriver) Name() string { return lang.DriverNS }

// CheckHost checks privileges, overlayfs, cgroups and networking.
func (d *nsDriver) CheckHost(ctx context.Context) error {
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

// Validate checks what the sandbox needs of this machine: its mount sources.
func (d *nsDriver) Validate(ctx context.Context, s *spec.RunSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("mount source %s does not exist: create it or fix the mount", m.Source)
		}
	}
	return nil
}

// cgroupParent is the cgroup under which a project's sandboxes live, in every hierarchy.
func cgroupParent(project string) string { return "/sbx/" + project }

// nsConfig turns a run spec into the namespace child's config.
func (d *nsDriver) nsConfig(s *spec.RunSpec) ns.Config {
	cfg := ns.Config{
		Name:         s.Name,
		Hostname:     s.Process.Hostname,
		Layers:       s.Image.Layers,
		UpperDir:     filepath.Join(writableDir(s.Dir), "upper"),
		WorkDir:      filepath.Join(writableDir(s.Dir), "work"),
		Argv:         s.Process.Argv,
		Env:          s.Process.Env,
		Workdir:      s.Process.Workdir,
		User:         s.Process.User,
		CPUs:         s.Resources.CPUs,
		MemoryMiB:    s.Resources.MemoryMiB,
		Pids:         s.Resources.Pids,
		CgroupParent: cgroupParent(s.Project),
	}
	for _, m := range s.Mounts {
		cfg.Mounts = append(cfg.Mounts, ns.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, r := range s.Resources.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, ns.Rlimit{Resource: r.Resource, Soft: r.Soft, Hard: r.Hard})
	}
	return cfg
}

func (d *nsDriver) Start(ctx context.Context, s *spec.RunSpec, console io.Writer) (_ Instance, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg := d.nsConfig(s)
	if err := writableLayer(s.Dir); err != nil {
		return nil, err
	}
	inst := &nsInstance{d: d, spec: s}
	defer func() {
		if err != nil {
			_ = inst.Close(context.WithoutCancel(ctx))
		}
	}()
	// The network first: the sandbox joins a namespace that is already wired for its scope.
	h, err := nsnet.Setup(ctx, nsnet.Net{
		Project: s.Project, Name: s.Name, Scope: string(s.Network.Scope), Group: s.Network.Group,
		Subnet: s.Network.Subnet, IP: s.Network.IP,
	})
	inst.netUp = true // Setup may have made part of it before failing
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	inst.handle = h
	cfg.NetNS = h.NetNSPath()
	cfg.Hosts = hostsFile(s, h.IP())
	if err := inst.publish(); err != nil {
		return nil, err
	}
	cfg.ResolvConf = nsnet.ResolvConf(string(s.Network.Scope), inst.serveDNS(console))
	p, err := ns.Start(context.WithoutCancel(ctx), []string{d.exe, NSChildCommand}, cfg, console, console)
	if err != nil {
		return nil, err
	}
	inst.proc = p
	for _, w := range p.Warnings {
		fmt.Fprintf(console, "[sbx] warning: %s\n", w)
	}
	return inst, nil
}

// Cleanup removes what a Start of s left when its instance was never closed: the cgroups
// (killing what is still in them) and the network.
func (d *nsDriver) Cleanup(ctx context.Context, s *spec.RunSpec) error {
	err := errors.Join(
		ns.Cleanup(d.nsConfig(s)),
		nsnet.Teardown(ctx, s.Project, s.Name),
	)
	removeEmptyCgroupParents(s.Project)
	if err != nil {
		return fmt.Errorf("clean up after sandbox %s: %w", s.Name, err)
	}
	return nil
}

// nsInstance is a running namespace sandbox and what it holds on the host.
type nsInstance struct {
	d    *nsDriver
	spec *spec.RunSpec

	proc   *ns.Process
	handle *nsnet.Handle // the sandbox's network
	netUp  bool          // nsnet.Setup ran: Close tears the network down

	mu      sync.Mutex
	closed  bool
	proxies []*nsnet.Proxy
	dns     *nsnet.DNSForwarder // answers public and any sandboxes' queries on their gateway
	cancel  context.CancelFunc  // stops the proxies
}

func (i *nsInstance) Pid() int { return i.proc.Pid() }

func (i *nsInstance) Signal(sig os.Signal) error {
	err := i.proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return os.ErrProcessDone
	}
	return err
}

func (i *nsInstance) Wait(ctx context.Context) (Exit, error) {
	done := make(chan Exit, 1)
	go func() {
		st, err := i.proc.Wait()
		ex := Exit{Code: st.Code, At: time.Now()}
		if st.Signal != 0 {
			ex.Code, ex.Signal = -1, unix.SignalName(st.Signal)
		}
		if err != nil {
			ex.Err = err.Error()
		}
		done <- ex
	}()
	select {
	case ex := <-done:
		return ex, nil
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

// DialGuest connects to a port of the running sandbox: its group IP, or inside its network
// namespace, never through the published port's proxy.
func (i *nsInstance) DialGuest(ctx context.Context, port int) (net.Conn, error) {
	if i.handle == nil {
		return nil, errors.New("the sandbox has no network")
	}
	return i.handle.Dialer("tcp", port)(ctx)
}

// Close kills the sandbox if it still runs, then removes its proxies, DNS forwarder,
// cgroups and network.
func (i *nsInstance) Close(ctx context.Context) error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.closed = true
	if i.dns != nil {
		_ = i.dns.Close()
	}
	for _, px := range i.proxies {
		_ = px.Close()
	}
	if i.cancel != nil {
		i.cancel()
	}
	i.mu.Unlock()
	var errs []error
	if i.proc != nil {
		// SIGKILL to the namespace's init ends every process in it.
		if err := i.proc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("kill sandbox %s: %w", i.spec.Name, err))
		}
		_, _ = i.proc.Wait()
	}
	errs = append(errs, ns.Cleanup(i.d.nsConfig(i.spec)))
	if i.netUp {
		errs = append(errs, nsnet.Teardown(ctx, i.spec.Project, i.spec.Name))
	}
	removeEmptyCgroupParents(i.spec.Project)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release sandbox %s: %w", i.spec.Name, err)
	}
	return nil
}

// publish starts one proxy per port: host_ip:host on the host to the guest port.
func (i *nsInstance) publish() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	i.cancel = cancel
	for _, port := range i.spec.Ports {
		proto := string(port.Protocol)
		addr := net.JoinHostPort(port.HostIP, strconv.Itoa(port.Host))
		px, err := nsnet.ListenProxy(ctx, proto, addr, i.handle.Dialer(proto, port.Guest), nsnet.WithLogger(i.d.log))
		if err != nil {
			return fmt.Errorf("publish %s/%s: %w", addr, proto, err)
		}
		i.proxies = append(i.proxies, px)
		go func() { _ = px.Serve(ctx) }()
	}
	return nil
}

// serveDNS starts the sandbox's DNS forwarder on its gateway when its scope reaches the
// outside, and returns the handle to name in resolv.conf, or nil: then the host's resolvers
// are listed instead (public sandboxes cannot reach private ones).
func (i *nsInstance) serveDNS(console io.Writer) *nsnet.Handle {
	if s := i.spec.Network.Scope; s != spec.ScopePublic && s != spec.ScopeAny {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	f, err := nsnet.ServeDNS(context.Background(), i.handle, nsnet.DNSUpstreams(), nsnet.WithDNSLogger(i.d.log))
	if err != nil {
		fmt.Fprintf(console, "[sbx] warning: no DNS forwarder for this sandbox: %v\n", err)
		return nil
	}
	i.dns = f
	return i.handle
}

// removeEmptyCgroupParents removes the project's cgroup (sbx/<project>) and sbx's own in every
// hierarchy once no sandbox cgroup is left in them; rmdir refuses a cgroup that still has
// children, so a sandbox starting meanwhile keeps its parents.
func removeEmptyCgroupParents(project string) {
	for _, pattern := range []string{"/sys/fs/cgroup/*", "/sys/fs/cgroup"} {
		dirs, _ := filepath.Glob(pattern + cgroupParent(project))
		for _, d := range dirs {
			_ = os.Remove(d)
			_ = os.Remove(filepath.Dir(d))
		}
	}
}

// hostsFile is the sandbox's /etc/hosts: localhost, itself, and the other sandboxes of its
// group by name.
func hostsFile(s *spec.RunSpec, ip netip.Addr) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ip.IsValid() {
		fmt.Fprintf(&b, "%s\t%s\n", ip, s.Process.Hostname)
	} else {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", s.Process.Hostname)
	}
	for _, name := range sortedKeys(s.Network.Peers) {
		fmt.Fprintf(&b, "%s\t%s\n", s.Network.Peers[name], name)
	}
	return b.String()
}

// writableLayer prepares dir/rw for the overlay's upper and work directories, refusing any
// of them that is a symlink or not the user's own (the kernel would follow it when mounting).
func writableLayer(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writable layer: %w", err)
	}
	if err := state.CheckDir(dir); err != nil {
		return fmt.Errorf("writable layer: %w", err)
	}
	if err := state.EnsureDir(writableDir(dir)); err != nil {
		return fmt.Errorf("writable layer: %w", err)
	}
	for _, sub := range []string{"upper", "work"} {
		p := filepath.Join(writableDir(dir), sub)
		if _, err := os.Lstat(p); err == nil {
			if err := state.CheckDir(p); err != nil {
				return fmt.Errorf("writable layer: %w", err)
			}
		}
	}
	return nil
}
