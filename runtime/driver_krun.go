package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/krun"
	"github.com/sbx-dev/sbx/lang"
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
		return fmt.Errorf("sandbox %s: %w\n%s", s.Name, err, krunAlternative)
	}
	defer lib.Close()
	if err := d.scopeProblem(lib, s); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Name, err)
	}
	for _, m := range s.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("sandbox %s: mount %s: %w", s.Name, m.Target, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("sandbox %s: mount %s: libkrun shares directories only (virtio-fs), not the file %s; mount its directory, or use --driver ns", s.Name, m.Target, m.Source)
		}
	}
	cfg, err := d.vmConfig(lib, s, filepath.Join(s.Dir, "console.fifo"))
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Name, err)
	}
	if err := lib.Check(&cfg); err != nil {
		return fmt.Errorf("sandbox %s: %w\n%s", s.Name, err, krunAlternative)
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
	return fmt.Errorf("%s needs a tap NIC on the project's bridge, which the krun driver does not set up yet; use --driver ns", why)
}

// vmConfig turns a run spec into the VMM child's configuration. Nothing the user wrote goes
// to libkrun's argv or environment: the init reads it from its config file.
func (d *krunDriver) vmConfig(lib *krun.Lib, s *spec.RunSpec, console string) (krun.VMConfig, error) {
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
	switch s.Network.Scope {
	case spec.ScopeNone:
		cfg.Net.Mode = krun.NetNone
	default:
		cfg.Net.PortMap = []krun.PortMapping{} // nothing published unless declared
		for _, p := range s.Ports {
			cfg.Net.PortMap = append(cfg.Net.PortMap, krun.PortMapping{Host: uint16(p.Host), Guest: uint16(p.Guest)})
		}
	}
	if lib.Has("krun_add_vsock_port2") {
		cfg.VsockPorts = []krun.VsockPort{{Port: krunControlPort, Path: filepath.Join(s.Dir, "ctl.sock"), Listen: true}}
	}
	return cfg, nil
}

func krunShareTag(i int) string       { return "sbx" + strconv.Itoa(i) }
func krunInitLayer(dir string) string { return filepath.Join(dir, "init-layer") }

// initConfig is the init's run config for the sandbox.
func krunInitConfig(s *spec.RunSpec) sbxinit.Config {
	c := sbxinit.Config{
		Version: sbxinit.Version,
		Process: sbxinit.Process{
			Argv: s.Process.Argv,
			Env:  s.Process.Env,
			Cwd:  s.Process.Workdir,
			User: sbxinit.User{Spec: s.Process.User},
		},
		Hostname: s.Process.Hostname,
		Control: sbxinit.Control{
			VsockPort: krunControlPort,
			// The stand-in libkrun reaches guest vsock port P at this unix socket.
			UnixPath: sbxinit.ControlDir + "/vsock-" + strconv.Itoa(krunControlPort) + ".sock",
		},
	}
	for _, r := range s.Resources.Rlimits {
		c.Rlimits = append(c.Rlimits, sbxinit.Rlimit{Name: r.Name, Resource: r.Resource, Soft: r.Soft, Hard: r.Hard})
	}
	for i, m := range s.Mounts {
		c.Mounts = append(c.Mounts, sbxinit.Mount{Type: sbxinit.Virtiofs, Source: krunShareTag(i), Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return c
}

// writeInitLayer (re)creates the sandbox's init layer: the init program and its config.
func writeInitLayer(s *spec.RunSpec) error {
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
	return sbxinit.WriteConfig(dir, krunInitConfig(s))
}

func (d *krunDriver) Start(ctx context.Context, s *spec.RunSpec, console io.Writer) (Instance, error) {
	if err := s.Validate(); err != nil {
		return nil, err
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

	copied := make(chan struct{})
	go func() { _, _ = io.Copy(console, rd); close(copied) }()
	fail := func(err error) (Instance, error) {
		rd.Close()
		_ = os.Remove(fifo)
		return nil, err
	}
	lib, err := krun.Open(d.libOptions()...)
	if err != nil {
		return fail(fmt.Errorf("sandbox %s: %w\n%s", s.Name, err, krunAlternative))
	}
	cfg, err := d.vmConfig(lib, s, fifo)
	lib.Close()
	if err != nil {
		return fail(err)
	}
	// The writable layer's top directory is the guest's /: it must be traversable by every
	// user, as / is.
	for _, dir := range []string{cfg.Overlay.Upper, cfg.Overlay.Work, cfg.Overlay.Merged} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(fmt.Errorf("sandbox %s: %w", s.Name, err))
		}
	}
	if err := os.Chmod(cfg.Overlay.Upper, 0o755); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", s.Name, err))
	}
	if err := writeInitLayer(s); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", s.Name, err))
	}
	child, err := krun.Spawn(ctx, []string{d.exe, KrunChildCommand}, cfg,
		krun.WithChildOutput(console, nil), krun.WithChildEnv(os.Environ()),
		krun.WithChildLog(filepath.Join(s.Dir, "vmm.log")),
		krun.WithStopTimeout(max(s.StopTimeout, time.Second)))
	if err != nil {
		return fail(err)
	}
	return &krunInstance{spec: s, child: child, fifo: rd, fifoPath: fifo, copied: copied}, nil
}

// Cleanup removes the console FIFO: the VMM child dies with its supervisor (Pdeathsig) and
// holds nothing else outside its process.
func (d *krunDriver) Cleanup(ctx context.Context, s *spec.RunSpec) error {
	err := os.Remove(filepath.Join(s.Dir, "console.fifo"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clean up after sandbox %s: %w", s.Name, err)
	}
	return nil
}

type krunInstance struct {
	spec     *spec.RunSpec
	child    *krun.Child
	fifo     *os.File
	fifoPath string
	copied   chan struct{}

	closeOnce sync.Once
	drainOnce sync.Once
}

func (i *krunInstance) Pid() int                   { return i.child.Pid() }
func (i *krunInstance) Signal(sig os.Signal) error { return i.child.Signal(sig) }

// DialGuest is not possible through TSI: a guest port is only reachable when published.
func (i *krunInstance) DialGuest(ctx context.Context, port int) (net.Conn, error) {
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
	return nil, fmt.Errorf("guest port %d is not published with a port block, so the krun driver cannot reach it", port)
}

// Close kills the VMM child if it still runs and removes the console FIFO.
func (i *krunInstance) Close(ctx context.Context) error {
	var err error
	i.closeOnce.Do(func() {
		_ = i.child.Signal(syscall.SIGKILL)
		_ = i.child.Wait(ctx)
		i.fifo.Close()
		if e := os.Remove(i.fifoPath); e != nil && !errors.Is(e, os.ErrNotExist) {
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
