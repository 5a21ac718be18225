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

// CheckHost checks that libkrun loads and KVM is usable.
func (d *krunDriver) CheckHost(ctx context.Context) error {
	if err := krun.Preflight(d.preflightOptions()...); err != nil {
		return fmt.Errorf("%w\n(on a host without KVM or libkrun, run with --driver ns, SBX_DRIVER=ns or project { driver = \"ns\" })", err)
	}
	return nil
}

func (d *krunDriver) preflightOptions(extra ...krun.PreflightOption) []krun.PreflightOption {
	opts := []krun.PreflightOption{krun.WithLibrary(d.libOptions()...)}
	if krun.KVMCheckFromEnv() {
		opts = append(opts, krun.WithoutKVMCheck())
	}
	return append(opts, extra...)
}

// Validate checks that the loaded libkrun can do what the sandbox asks.
func (d *krunDriver) Validate(ctx context.Context, s *spec.RunSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if u := s.Process.User; u != "" && u != "root" && u != "0" && u != "0:0" {
		return fmt.Errorf("sandbox %s: the krun driver cannot run the workload as user %q yet (libkrun starts it as root): drop user, or use --driver ns", s.Name, u)
	}
	for _, p := range s.Ports {
		if p.Protocol == spec.UDP {
			return fmt.Errorf("sandbox %s: libkrun maps TCP ports only; drop the udp port or use --driver ns", s.Name)
		}
	}
	if len(s.Mounts) > 0 {
		return fmt.Errorf("sandbox %s: the krun driver cannot mount shares yet; drop the mounts or use --driver ns", s.Name)
	}
	cfg, err := d.vmConfig(s, filepath.Join(s.Dir, "console.fifo"))
	if err != nil {
		return err
	}
	return krun.Preflight(d.preflightOptions(krun.WithConfig(&cfg))...)
}

// vmConfig turns a run spec into the VMM child's configuration.
func (d *krunDriver) vmConfig(s *spec.RunSpec, console string) (krun.VMConfig, error) {
	cfg := krun.VMConfig{
		LogLevel:      krun.LogWarn,
		CPUs:          uint8(s.Resources.CPUs),
		MemoryMiB:     uint32(s.Resources.MemoryMiB),
		Workdir:       s.Process.Workdir,
		ExecPath:      s.Process.Argv[0],
		Argv:          s.Process.Argv[1:],
		Env:           append([]string{}, s.Process.Env...),
		ConsoleOutput: console,
	}
	switch s.Network.Scope {
	case "none":
		cfg.Net.Mode = krun.NetNone
	case "any":
		cfg.Net.PortMap = []krun.PortMapping{} // nothing published unless declared
		for _, p := range s.Ports {
			cfg.Net.PortMap = append(cfg.Net.PortMap, krun.PortMapping{Host: uint16(p.Host), Guest: uint16(p.Guest)})
		}
	default:
		return cfg, fmt.Errorf("sandbox %s: the krun driver cannot enforce network scope %s yet: use scope any or none, or --driver ns", s.Name, s.Network.Scope)
	}
	// The image's layers read-only, the sandbox's writable layer on top.
	w := writableDir(s.Dir)
	cfg.Overlay = &krun.Overlay{
		Lower:  append([]string{}, s.Image.Layers...),
		Upper:  filepath.Join(w, "root"),
		Work:   filepath.Join(w, "work"),
		Merged: filepath.Join(s.Dir, "rootfs"),
	}
	for _, r := range s.Resources.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, krun.Rlimit{Resource: r.Resource, Cur: r.Soft, Max: r.Hard})
	}
	return cfg, nil
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
	cfg, err := d.vmConfig(s, fifo)
	if err == nil {
		for _, dir := range []string{cfg.Overlay.Upper, cfg.Overlay.Work, cfg.Overlay.Merged} {
			if err = os.MkdirAll(dir, 0o700); err != nil {
				break
			}
		}
	}
	if err != nil {
		rd.Close()
		_ = os.Remove(fifo)
		return nil, err
	}
	env := os.Environ()
	child, err := krun.Spawn(ctx, []string{d.exe, KrunChildCommand}, cfg,
		krun.WithChildOutput(console, console), krun.WithChildEnv(env),
		krun.WithStopTimeout(max(s.StopTimeout, time.Second)))
	if err != nil {
		rd.Close()
		_ = os.Remove(fifo)
		return nil, err
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
	var exitErr interface{ Sys() any }
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.Code, ex.Signal = -1, unix.SignalName(ws.Signal())
		}
	} else if err != nil {
		ex.Err = err.Error()
	}
	return ex, nil
}
