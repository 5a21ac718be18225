package runtime_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/drivertest"
	"github.com/sbx-dev/sbx/runtime/nsnet"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
)

func nsTestDriver() runtime.Driver {
	d, err := runtime.NewDriver(lang.DriverNS, os.Args[0], nil)
	if err != nil {
		panic(err)
	}
	return d
}

// busyboxLayer builds, once per test binary, a layer holding busybox and its applets.
var busyboxLayer = sync.OnceValues(func() (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox (apt-get install busybox-static): %w", err)
	}
	dir, err := os.MkdirTemp("", "sbx-drivertest-layer-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return "", err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		return "", err
	}
	for _, a := range []string{"sh", "sleep", "httpd", "echo", "kill", "true", "cat", "wget"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return "", err
		}
	}
	return dir, nil
})

// freeSubnet picks a /24 under 10.230.0.0/16 that no route of the host overlaps.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	for i := os.Getpid() % 200; i < os.Getpid()%200+200; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 230, byte(i % 250), 0}), 24)
		if !strings.Contains(string(out), p.Addr().String()[:len(p.Addr().String())-1]) {
			return p
		}
	}
	t.Fatal("no free subnet under 10.230.0.0/16")
	return netip.Prefix{}
}

// sbxInit builds, once per test binary, the sandboxes' init as make build does (static, no
// cgo); useInit points the driver at it (the test binary has no sbx-init next to it).
var sbxInit = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sbx-init-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sbx-init")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/sbx-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sbx-init: %v\n%s", err, out)
	}
	return bin, nil
})

func useInit(t *testing.T) {
	t.Helper()
	bin, err := sbxInit()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SBX_INIT", bin)
}

func TestNSDriverConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ns driver needs root")
	}
	useInit(t)
	layer, err := busyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	projectDir := t.TempDir()
	project := runtime.ProjectID("drivertest", projectDir)
	subnet := freeSubnet(t)
	next := subnet.Addr().Next().Next() // .1 is the gateway
	var mu sync.Mutex
	drivertest.Run(t, drivertest.Harness{
		NewDriver: nsTestDriver,
		Spec: func(t *testing.T, name string, argv ...string) *spec.RunSpec {
			mu.Lock()
			ip := next
			next = next.Next()
			mu.Unlock()
			return &spec.RunSpec{
				Version: spec.Version, Project: project, Name: name,
				Dir: filepath.Join(projectDir, ".sbx", "sandboxes", name), Driver: lang.DriverNS, Generation: 1,
				Image:     spec.Image{Ref: "dir:" + layer, Layers: []string{layer}},
				Process:   spec.Process{Argv: argv, Env: []string{"PATH=/bin"}, Workdir: "/", Hostname: name},
				Resources: spec.Resources{CPUs: 1, MemoryMiB: 64, Pids: 64},
				Network:   spec.Network{Scope: spec.ScopeGroup, Group: "ct", Subnet: subnet, IP: ip},
				Restart:   spec.RestartNo, StopTimeout: time.Second,
			}
		},
		Leftovers: func(s *spec.RunSpec) []string { return nsLeftovers(t, s) },
	})
}

// nsLeftovers lists what the ns driver left of s (and of its project) on the host: cgroups,
// links, network namespaces, firewall rules and mounts.
func nsLeftovers(t *testing.T, s *spec.RunSpec) []string {
	var left []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/sbx/" + s.Project, "/sys/fs/cgroup/sbx/" + s.Project} {
		dirs, _ := filepath.Glob(pattern)
		left = append(left, dirs...)
	}
	res, err := nsnet.List(context.Background(), s.Project)
	if err != nil {
		t.Errorf("list the project's network resources: %v", err)
	}
	for _, l := range res.Links {
		left = append(left, "link "+l.Name)
	}
	left = append(left, res.NetNS...)
	left = append(left, res.Chains...)
	for _, r := range res.Rules {
		left = append(left, fmt.Sprintf("rule %s %s %s %s", r.Family, r.Table, r.Chain, r.Tag))
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, s.Dir) {
				left = append(left, "mount "+line)
			}
		}
	}
	return left
}

// TestNSDriverInit: an ns sandbox's PID 1 is sbx-init, whose control socket the host reaches
// at <sandbox dir>/ctl/init.sock (as on the krun driver) and which serves exec; the payload's
// signal reaches the supervisor as a signal; an image of one static program and nothing
// else (distroless-like) runs.
func TestNSDriverInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ns driver needs root")
	}
	useInit(t)
	layer, err := busyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	projectDir := t.TempDir()
	project := runtime.ProjectID("nsinit", projectDir)
	newSpec := func(name, layer string, argv ...string) *spec.RunSpec {
		return &spec.RunSpec{
			Version: spec.Version, Project: project, Name: name,
			Dir: filepath.Join(projectDir, ".sbx", "sandboxes", name), Driver: lang.DriverNS, Generation: 1,
			Image:     spec.Image{Ref: "dir:" + layer, Layers: []string{layer}},
			Process:   spec.Process{Argv: argv, Env: []string{"PATH=/bin"}, Workdir: "/", Hostname: name},
			Resources: spec.Resources{CPUs: 1, MemoryMiB: 64, Pids: 64},
			Network:   spec.Network{Scope: spec.ScopeNone},
			Restart:   spec.RestartNo, StopTimeout: time.Second,
		}
	}
	d := nsTestDriver()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s := newSpec("web", layer, "sh", "-c", "echo web-ready; exec sleep 60")
	var console syncWriter
	inst, err := d.Start(ctx, s, &console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Close(context.Background()) })
	c, err := sbxinit.DialUnix(ctx, filepath.Join(s.Dir, "ctl", sbxinit.ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out strings.Builder
	code, err := c.Exec(ctx, sbxinit.ExecRequest{Argv: []string{"sh", "-c", "echo $(hostname) $(cat /proc/1/cmdline | tr '\\0' ' ')"}}, nil, &out, &out)
	if err != nil || code != 0 || out.String() != "web /.sbx/init\n" {
		t.Fatalf("exec: %d %v %q", code, err, out.String())
	}
	if err := c.Signal(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ex, err := inst.Wait(ctx)
	if err != nil || ex.Signal != "SIGTERM" || ex.Code != -1 || ex.Err != "" {
		t.Fatalf("exit %+v, %v; want killed by SIGTERM", ex, err)
	}
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Shell-less: /app/echo is busybox, which runs the applet its name says.
	bare := t.TempDir()
	if err := os.Chmod(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(filepath.Join(layer, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bare, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bare, "app", "echo"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	s = newSpec("bare", bare, "/app/echo", "distroless", "runs")
	s.Process.Env, s.Process.User = nil, "65532"
	var bareConsole syncWriter
	inst, err = d.Start(ctx, s, &bareConsole)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Close(context.Background()) })
	if ex, err := inst.Wait(ctx); err != nil || ex.Code != 0 || ex.Signal != "" {
		t.Fatalf("exit %+v, %v", ex, err)
	}
	if got := bareConsole.String(); !strings.Contains(got, "distroless runs\n") {
		t.Fatalf("console %q", got)
	}
}

// syncWriter collects a sandbox's console.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
