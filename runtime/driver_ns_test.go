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
	"testing"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/drivertest"
	"github.com/sbx-dev/sbx/runtime/nsnet"
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
