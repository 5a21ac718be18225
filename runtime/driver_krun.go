package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/krun"
)

// krunDriver boots each sandbox as a libkrun microVM in a VMM child process (krun package).
type krunDriver struct {
	exe string
	log *slog.Logger
}

func (*krunDriver) Name() string { return "krun" }

func (d *krunDriver) libOptions() []krun.Option {
	if path, ok := krun.LibraryPathFromEnv(); ok {
		return []krun.Option{krun.WithPath(path)}
	}
	return nil
}

func (d *krunDriver) Preflight(ctx context.Context, spec *RunSpec) error {
	var needs krun.Needs
	if spec != nil {
		scope, err := krun.ParseScope(spec.Sandbox.Network.Scope)
		if err != nil {
			return err
		}
		needs.Scopes = []krun.Scope{scope}
		needs.StaticIP = spec.Sandbox.Network.IP.IsValid()
		needs.PortsWithScopeNone = scope == krun.ScopeNone && len(spec.Sandbox.Ports) > 0
		needs.Overlay = spec.RootDir == ""
		// libkrun starts the workload as the guest's root and has no call to change that; running
		// it as root when another user was asked for would widen what it may do.
		if u := spec.User; u != "" && u != "root" && u != "0" && u != "0:0" {
			return fmt.Errorf("sandbox %s: the krun driver cannot run the workload as user %q yet (libkrun starts it as root): drop user, or use --driver ns", spec.Sandbox.Name, u)
		}
		for _, p := range spec.Sandbox.Ports {
			if p.Protocol == "udp" {
				return fmt.Errorf("sandbox %s: libkrun maps TCP ports only; drop the udp port or use --driver ns", spec.Sandbox.Name)
			}
		}
	}
	return krun.Preflight(needs, krun.WithLibrary(d.libOptions()...))
}

// vmConfig turns a run spec into the VMM child's configuration.
func (d *krunDriver) vmConfig(spec *RunSpec, console string) (krun.VMConfig, error) {
	sb := &spec.Sandbox
	scope, err := krun.ParseScope(sb.Network.Scope)
	if err != nil {
		return krun.VMConfig{}, err
	}
	cfg := krun.VMConfig{
		LogLevel:      krun.LogWarn,
		CPUs:          uint8(sb.CPUs),
		MemoryMiB:     uint32(sb.MemoryMiB),
		PortMap:       []krun.PortMapping{}, // nothing published unless declared
		Network:       krun.Network{Scope: scope},
		Workdir:       spec.Workdir,
		ExecPath:      spec.Argv[0],
		Argv:          spec.Argv[1:],
		Env:           append([]string{}, spec.Env...),
		ConsoleOutput: console,
	}
	if spec.RootDir != "" {
		cfg.Root = spec.RootDir
	} else {
		// The image's layers read-only, the sandbox's writable layer last.
		upper := filepath.Join(writableDir(spec.Dir), "root")
		if err := os.MkdirAll(upper, 0o755); err != nil {
			return cfg, err
		}
		cfg.Layers = append(append([]string{}, spec.Layers...), upper)
	}
	if ip := sb.Network.IP; ip.IsValid() {
		cfg.Network.IP = ip.String()
		if spec.Subnet.IsValid() {
			cfg.Network.Subnet = spec.Subnet.String()
		}
	}
	for _, p := range sb.Ports {
		cfg.PortMap = append(cfg.PortMap, krun.PortMapping{Host: uint16(p.Host), Guest: uint16(p.Guest)})
	}
	for _, r := range sb.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, krun.Rlimit{Resource: r.Number, Cur: r.Soft, Max: r.Hard})
	}
	for i, m := range sb.Mounts {
		cfg.Mounts = append(cfg.Mounts, krun.Mount{Tag: "sbx" + strconv.Itoa(i), HostPath: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if len(cfg.Mounts) > 0 {
		// The guest mounts the shares itself before running the command.
		cfg.ExecPath = "/bin/sh"
		cfg.Argv = append([]string{"-c", krun.MountScript + `exec "$@"`, "sh"}, spec.Argv...)
	}
	return cfg, nil
}

func (d *krunDriver) Start(ctx context.Context, spec *RunSpec, console io.Writer) (Instance, error) {
	// libkrun writes the console to a file path: give it a FIFO and copy from it, so the
	// console goes through the same rotating, timestamped log as every driver's.
	fifo := filepath.Join(spec.Dir, "console.fifo")
	_ = os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("console fifo: %w", err)
	}
	// O_RDWR keeps the FIFO open for reading without waiting for the writer to appear.
	rd, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("console fifo: %w", err)
	}
	go func() { _, _ = io.Copy(console, rd) }()

	cfg, err := d.vmConfig(spec, fifo)
	if err != nil {
		rd.Close()
		return nil, err
	}
	env := os.Environ()
	child, err := krun.Spawn(ctx, []string{d.exe, KrunChildCommand}, cfg,
		krun.WithChildOutput(console, console), krun.WithChildEnv(env),
		krun.WithStopTimeout(max(spec.Sandbox.StopTimeout, time.Second)))
	if err != nil {
		rd.Close()
		return nil, err
	}
	return &krunInstance{child: child, fifo: rd}, nil
}

func (d *krunDriver) Cleanup(ctx context.Context, spec *RunSpec) error {
	// The VMM child dies with its supervisor (Pdeathsig) and holds nothing outside its
	// process but the console FIFO.
	err := os.Remove(filepath.Join(spec.Dir, "console.fifo"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

type krunInstance struct {
	child *krun.Child
	fifo  *os.File
}

func (i *krunInstance) Pid() int                   { return i.child.Pid() }
func (i *krunInstance) Signal(sig os.Signal) error { return i.child.Signal(sig) }
func (i *krunInstance) Wait() Exit {
	err := i.child.Wait(context.Background())
	// Give the copier a moment to drain what the guest wrote last, then stop it.
	time.Sleep(50 * time.Millisecond)
	i.fifo.Close()
	ex := Exit{Code: i.child.ExitCode(), At: time.Now()}
	var exitErr interface{ Sys() any }
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.Code, ex.Signal = -1, unix.SignalName(ws.Signal())
		}
	} else if err != nil {
		ex.Err = err.Error()
	}
	return ex
}
