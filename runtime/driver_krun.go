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
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/krun"
	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/nsnet"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// krunDriver boots each sandbox as a libkrun microVM in a VMM child process (krun package).
type krunDriver struct {
	exe string
	log *slog.Logger
}

func (*krunDriver) Name() string { return lang.DriverKrun }

func (d *krunDriver) libOptions() []krun.Option {
	if path, ok := krun.LibraryPathFromEnv(); ok {
		return []krun.Option{krun.WithPath(path)}
	}
	return nil
}

// CheckHost checks that libkrun loads and KVM is usable. $SBX_KVM_CHECK=skip skips the KVM
// device check only (a testing aid, see krun/README.md).
func (d *krunDriver) CheckHost(ctx context.Context) error {
	if err := krun.Preflight(d.preflightOptions()...); err != nil {
		return fmt.Errorf("%w\n%s", err, krunAlternative)
	}
	return nil
}

// krunAlternative is the runtime's advice when libkrun cannot do something: written here,
// once, never by the krun package.
const krunAlternative = "(on a host without KVM or a capable libkrun, run with --driver ns, SBX_DRIVER=ns or project { driver = \"ns\" })"

func (d *krunDriver) preflightOptions(extra ...krun.PreflightOption) []krun.PreflightOption {
	opts := []krun.PreflightOption{krun.WithLibrary(d.libOptions()...)}
	if krun.KVMCheckFromEnv() {
		opts = append(opts, krun.WithoutKVMCheck())
	}
	return append(opts, extra...)
}

// krunControlPort is the guest vsock port of the init's control socket.
const krunControlPort = 1024

// Validate checks that the loaded libkrun can do what the sandbox asks, naming what is
// missing; a scope is never widened.
func (d *krunDriver) Validate(ctx context.Context, s *spec.RunSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	lib, err := krun.Open(d.libOptions()...)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, krunAlternative)
	}
	defer lib.Close()
	if err := d.scopeProblem(lib, s); err != nil {
		return fmt.Errorf("%w", err)
	}
	if os.Geteuid() != 0 && !lib.Has("krun_set_overlayfs_root") {
		return errors.New("on upstream libkrun, sbx assembles the root from the image's layers with overlayfs in a mount namespace of the VMM's own, which needs root: run sbx as root, install microsandbox's libkrun fork (krun_set_overlayfs_root), or use --driver ns")
	}
	for _, m := range s.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("mount %s: libkrun shares directories only (virtio-fs), not the file %s; mount its directory, or use --driver ns", m.Target, m.Source)
		}
	}
	cfg, err := d.vmConfig(lib, s, filepath.Join(s.Dir, "console.fifo"), nil)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w", err)
	}
	if err := lib.Check(&cfg); err != nil {
		return fmt.Errorf("%w\n%s", err, krunAlternative)
	}
	return nil
}

// scopeProblem says why the loaded libkrun cannot enforce the sandbox's network, if it
// cannot. Scopes group and public (and static addresses) need a tap NIC on the project's
// bridge; any may keep TSI; none needs neither NIC nor TSI.
func (d *krunDriver) scopeProblem(lib *krun.Lib, s *spec.RunSpec) error {
	scope := s.Network.Scope
	switch {
	case scope == spec.ScopeNone:
		if !lib.Has("krun_disable_implicit_vsock") && !lib.Has("krun_set_tsi_scope") {
			return fmt.Errorf("this libkrun cannot remove TSI: scope none needs krun_disable_implicit_vsock (%s); use --driver ns", krun.Since("krun_disable_implicit_vsock"))
		}
		if len(s.Ports) > 0 {
			return fmt.Errorf("scope none has no network, so ports cannot be published; drop the port blocks or use another scope")
		}
		return nil
	case useTap(lib, s) && os.Geteuid() == 0:
		return nil
	case scope == spec.ScopeAny && !s.Network.IP.IsValid():
		for _, p := range s.Ports {
			if p.Protocol == spec.UDP {
				return fmt.Errorf("libkrun's TSI forwards TCP only: udp port %d needs a tap NIC, which the krun driver does not give yet; use --driver ns", p.Guest)
			}
		}
		return nil
	}
	why := "scope " + string(scope)
	if scope == spec.ScopeAny {
		why = "a static IP"
	}
	if err := lib.NeedFunc("krun_add_net_tap"); err != nil {
		return fmt.Errorf("this libkrun lacks krun_add_net_tap: %s needs a tap NIC (libkrun >= 1.15 with NET=1); use --driver ns", why)
	}
	if err := lib.NeedFeature(krun.FeatureNet); err != nil {
		return fmt.Errorf("this libkrun was built without NET: %s needs krun_add_net_tap (libkrun >= 1.15 with NET=1); use --driver ns", why)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs a tap device on the project's bridge, which only root can create; run sbx as root or use --driver ns", why)
	}
	return nil
}

// useTap reports whether the sandbox gets a tap NIC: every scope but none, where the library
// can (NET). Without NET, scope any keeps TSI (scopeProblem refuses the rest).
func useTap(lib *krun.Lib, s *spec.RunSpec) bool {
	return s.Network.Scope != spec.ScopeNone && lib.Has("krun_add_net_tap") && lib.NeedFeature(krun.FeatureNet) == nil
}

// vmConfig turns a run spec into the VMM child's configuration. Nothing the user wrote goes
// to libkrun's argv or environment: the init reads it from its config file.
// tap is the sandbox's tap device, or nil for TSI or no network.
func (d *krunDriver) vmConfig(lib *krun.Lib, s *spec.RunSpec, console string, tap *nsnet.Handle) (krun.VMConfig, error) {
	w := writableDir(s.Dir)
	cfg := krun.VMConfig{
		LogLevel:  krun.LogWarn,
		CPUs:      uint8(s.Resources.CPUs),
		MemoryMiB: uint32(s.Resources.MemoryMiB),
		Overlay: &krun.Overlay{
			// The image's layers, the init layer above them (so no image hides the init), the
			// sandbox's writable layer on top.
			Lower:         append(append([]string{}, s.Image.Layers...), krunInitLayer(s.Dir)),
			Upper:         filepath.Join(w, "root"),
			Work:          filepath.Join(w, "work"),
			Merged:        filepath.Join(s.Dir, "rootfs"),
			PreferLibkrun: true,
		},
		ExecPath:      sbxinit.InitPath,
		Argv:          []string{},
		Env:           []string{},
		ConsoleOutput: console,
	}
	for i := range s.Mounts {
		cfg.Mounts = append(cfg.Mounts, krun.Mount{Tag: krunShareTag(i), HostPath: s.Mounts[i].Source})
	}
	switch {
	case s.Network.Scope == spec.ScopeNone:
		cfg.Net.Mode = krun.NetNone
	case useTap(lib, s):
		// Validate has no tap yet: a placeholder of the same shape.
		name, mac := "sbxtap", "02:00:00:00:00:01"
		if tap != nil {
			name, mac = tap.TapName(), tap.MAC().String()
		}
		cfg.Net = krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: name, MAC: mac}}}
	default:
		cfg.Net.PortMap = []krun.PortMapping{} // nothing published unless declared
		for _, p := range s.Ports {
			cfg.Net.PortMap = append(cfg.Net.PortMap, krun.PortMapping{Host: uint16(p.Host), Guest: uint16(p.Guest)})
		}
	}
	// Without krun_add_vsock_port2 (the fork), or where the sandbox's directory is too deep
	// for a unix socket address, the init's control socket is not reachable from the host.
	if lib.Has("krun_add_vsock_port2") && len(krunControlSocket(s)) <= 107 {
		cfg.VsockPorts = []krun.VsockPort{{Port: krunControlPort, Path: krunControlSocket(s), Listen: true}}
	}
	return cfg, nil
}

// krunControlSocket is the host end of the init's control socket, where the ns driver has
// its own: <sandbox dir>/ctl/init.sock.
func krunControlSocket(s *spec.RunSpec) string {
	return filepath.Join(s.Dir, "ctl", sbxinit.ControlSocket)
}

func krunShareTag(i int) string       { return "sbx" + strconv.Itoa(i) }
func krunInitLayer(dir string) string { return filepath.Join(dir, "init-layer") }

// krunInitConfig is the init's run config for the sandbox: sbxinit.FromSpec completed with
// the krun driver's mounts, network and control port.
func krunInitConfig(s *spec.RunSpec, tap *nsnet.Handle, dns bool) sbxinit.Config {
	c := sbxinit.FromSpec(s)
	// The guest's vsock port, which libkrun maps to <sandbox dir>/ctl/init.sock on the host;
	// the stand-in libkrun, without vsock, relays that socket to this unix one instead.
	c.Control.VsockPort = krunControlPort
	c.Control.UnixPath = sbxinit.ControlDir + "/vsock-" + strconv.Itoa(krunControlPort) + ".sock"
	// Kernel file systems libkrun's own init or kernel may have mounted already (then
	// skipped), the shares by tag.
	c.Mounts = []sbxinit.Mount{
		{Type: sbxinit.Proc, Target: "/proc"},
		{Type: sbxinit.Sysfs, Target: "/sys"},
		{Type: sbxinit.Devpts, Target: "/dev/pts"},
	}
	for i, m := range s.Mounts {
		c.Mounts = append(c.Mounts, sbxinit.Mount{Type: sbxinit.Virtiofs, Source: krunShareTag(i), Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if c.Network == nil {
		c.Network = &sbxinit.Network{}
	}
	if tap == nil {
		// No NIC: scope none, or TSI.
		c.Network.Interface, c.Network.Address = "", netip.Prefix{}
		return c
	}
	c.Network.Interface = sbxinit.DefaultInterface
	c.Network.Address = tap.Prefix()
	c.Network.Gateway = tap.DefaultRoute()
	c.Network.MTU = tap.MTU()
	if dns {
		c.Network.DNS = []netip.Addr{tap.DNS()}
	}
	return c
}

// writeInitLayer (re)creates the sandbox's init layer: the init program and its config.
func writeInitLayer(s *spec.RunSpec, tap *nsnet.Handle, dns bool) error {
	dir := krunInitLayer(s.Dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	bin, err := sbxinit.FindInit()
	if err != nil {
		return err
	}
	if err := sbxinit.InstallInit(dir, bin); err != nil {
		return err
	}
	return sbxinit.WriteConfig(dir, krunInitConfig(s, tap, dns))
}

func (d *krunDriver) Start(ctx context.Context, s *spec.RunSpec, console io.Writer) (_ Instance, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := krunFindProgram(s); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	// libkrun writes the console to a file path: give it a FIFO and copy from it, so the
	// console goes through the same rotating, timestamped log as every driver's.
	fifo := filepath.Join(s.Dir, "console.fifo")
	_ = os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("console fifo: %w", err)
	}
	// O_RDWR keeps the FIFO open for reading without waiting for the writer to appear.
	rd, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("console fifo: %w", err)
	}
	inst := &krunInstance{d: d, spec: s, fifo: rd, fifoPath: fifo, copied: make(chan struct{})}
	go func() { _, _ = io.Copy(console, rd); close(inst.copied) }()
	defer func() {
		if err != nil {
			_ = inst.Close(context.WithoutCancel(ctx))
		}
	}()

	lib, err := krun.Open(d.libOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, krunAlternative)
	}
	defer lib.Close()
	if useTap(lib, s) {
		// The same bridge, firewall scope rules, proxies and DNS forwarder as the ns driver;
		// the VMM attaches the tap to the guest's NIC.
		inst.netUp = true // SetupTap may have made part of it before failing
		h, err := nsnet.SetupTap(ctx, nsnet.Net{
			Project: s.Project, Name: s.Name, Scope: string(s.Network.Scope), Group: s.Network.Group,
			Subnet: s.Network.Subnet, IP: s.Network.IP,
		})
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		inst.handle = h
		if err := inst.publish(); err != nil {
			return nil, err
		}
		inst.serveDNS(console)
	}
	cfg, err := d.vmConfig(lib, s, fifo, inst.handle)
	if err != nil {
		return nil, err
	}
	// The writable layer's top directory is the guest's /: it must be traversable by every
	// user, as / is.
	for _, dir := range []string{cfg.Overlay.Upper, cfg.Overlay.Work, cfg.Overlay.Merged} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w", err)
		}
	}
	if err := os.Chmod(cfg.Overlay.Upper, 0o755); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if err := os.MkdirAll(filepath.Dir(krunControlSocket(s)), 0o700); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if err := writeInitLayer(s, inst.handle, inst.dns != nil); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	child, err := krun.Spawn(ctx, []string{d.exe, KrunChildCommand}, cfg,
		krun.WithChildOutput(console, nil), krun.WithChildEnv(os.Environ()),
		krun.WithChildLog(filepath.Join(s.Dir, "vmm.log")),
		krun.WithStopTimeout(max(s.StopTimeout, time.Second)))
	if err != nil {
		return nil, err
	}
	inst.child = child
	return inst, nil
}

// Cleanup removes what a Start of s left when its instance was never closed: the console
// FIFO and the network (tap, rules). The VMM child dies with its supervisor (Pdeathsig) and
// its root's mount with the child's mount namespace.
func (d *krunDriver) Cleanup(ctx context.Context, s *spec.RunSpec) error {
	var errs []error
	if err := os.Remove(filepath.Join(s.Dir, "console.fifo")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, nsnet.Teardown(ctx, s.Project, s.Name))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up after sandbox %s: %w", s.Name, err)
	}
	return nil
}

type krunInstance struct {
	d        *krunDriver
	spec     *spec.RunSpec
	child    *krun.Child
	fifo     *os.File
	fifoPath string
	copied   chan struct{}

	handle *nsnet.Handle // the sandbox's tap network, nil for TSI or none
	netUp  bool          // SetupTap ran: Close tears the network down

	mu      sync.Mutex
	proxies []*nsnet.Proxy
	dns     *nsnet.DNSForwarder
	cancel  context.CancelFunc // stops the proxies

	closeOnce sync.Once
	drainOnce sync.Once
}

func (i *krunInstance) Pid() int                   { return i.child.Pid() }
func (i *krunInstance) Signal(sig os.Signal) error { return i.child.Signal(sig) }

// DialGuest connects to the guest's port at its address on the tap network. Through TSI (no
// NET) only a published port can be reached.
func (i *krunInstance) DialGuest(ctx context.Context, port int) (net.Conn, error) {
	if i.handle != nil {
		return i.handle.Dialer("tcp", port)(ctx)
	}
	for _, p := range i.spec.Ports {
		if p.Guest == port && p.Protocol == spec.TCP {
			host := p.HostIP
			if host == "" || host == "0.0.0.0" {
				host = "127.0.0.1"
			} else if host == "::" {
				host = "::1"
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(p.Host)))
		}
	}
	return nil, fmt.Errorf("guest port %d is not published with a port block, and without a tap NIC (libkrun with NET) the krun driver cannot reach it", port)
}

// publish starts one proxy per port (TCP and UDP): host_ip:host on the host to the guest's
// port on the tap network.
func (i *krunInstance) publish() error {
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

// serveDNS starts the DNS forwarder on the gateway for scopes that reach the outside.
func (i *krunInstance) serveDNS(console io.Writer) {
	if s := i.spec.Network.Scope; s != spec.ScopePublic && s != spec.ScopeAny {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	f, err := nsnet.ServeDNS(context.Background(), i.handle, nsnet.DNSUpstreams(), nsnet.WithDNSLogger(i.d.log))
	if err != nil {
		fmt.Fprintf(console, "[sbx] warning: no DNS forwarder for this sandbox: %v\n", err)
		return
	}
	i.dns = f
}

// Close kills the VMM child if it still runs, then removes the proxies, the DNS forwarder,
// the network and the console FIFO.
func (i *krunInstance) Close(ctx context.Context) error {
	var err error
	i.closeOnce.Do(func() {
		var errs []error
		if i.child != nil {
			_ = i.child.Signal(syscall.SIGKILL)
			_ = i.child.Wait(ctx)
		}
		i.mu.Lock()
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
		if i.netUp {
			errs = append(errs, nsnet.Teardown(ctx, i.spec.Project, i.spec.Name))
		}
		i.fifo.Close()
		if e := os.Remove(i.fifoPath); e != nil && !errors.Is(e, os.ErrNotExist) {
			errs = append(errs, e)
		}
		if e := errors.Join(errs...); e != nil {
			err = fmt.Errorf("release sandbox %s: %w", i.spec.Name, e)
		}
	})
	return err
}

func (i *krunInstance) Wait(ctx context.Context) (Exit, error) {
	err := i.child.Wait(ctx)
	if ctx.Err() != nil {
		return Exit{}, ctx.Err()
	}
	i.drainOnce.Do(func() {
		// The FIFO is open for writing here too, so the copier never sees EOF: let it drain
		// what the guest wrote last, then stop it.
		_ = i.fifo.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		<-i.copied
	})
	ex := Exit{Code: i.child.ExitCode(), At: time.Now()}
	var ee *krun.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.Signal != 0 {
			ex.Code, ex.Signal = -1, unix.SignalName(ee.Signal)
		}
		if ee.Summary != "" {
			// libkrun itself failed (an abort, no KVM): one line, the rest is in vmm.log.
			ex.Err = ee.Summary
		}
	case err != nil:
		ex.Err = err.Error()
	}
	return ex, nil
}

// krunFindProgram checks that the payload's program is in the sandbox's root, so that a
// missing one fails Start (the init would only find out inside the guest, after Start). It
// looks through the writable layer and the image's layers, top first, and the PATH of the
// payload's environment for a bare name; a program under a mount target is not checked.
func krunFindProgram(s *spec.RunSpec) error {
	prog := s.Process.Argv[0]
	for _, m := range s.Mounts {
		if strings.HasPrefix(prog, strings.TrimSuffix(m.Target, "/")+"/") {
			return nil
		}
	}
	var cands []string
	if strings.Contains(prog, "/") {
		cands = []string{path.Join(s.Process.Workdir, prog)}
		if path.IsAbs(prog) {
			cands = []string{prog}
		}
	} else {
		dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, e := range s.Process.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				dirs = v
			}
		}
		for _, d := range filepath.SplitList(dirs) {
			if path.IsAbs(d) {
				cands = append(cands, path.Join(d, prog))
			}
		}
	}
	roots := []string{filepath.Join(writableDir(s.Dir), "root")}
	for i := len(s.Image.Layers) - 1; i >= 0; i-- {
		roots = append(roots, s.Image.Layers[i])
	}
	for _, c := range cands {
		for _, r := range roots {
			if _, err := os.Lstat(filepath.Join(r, c)); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%s: no such program in the image", prog)
}
