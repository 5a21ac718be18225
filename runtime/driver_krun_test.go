package runtime_test

import (
	"fmt"
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
	"github.com/sbx-dev/sbx/runtime/spec"
)

// envKrunConformance makes the test binary's conformance owner process (drivertest.RunOwner
// in TestMain) drive krun instead of ns; it holds the sbx binary the krun driver re-executes
// as its VMM child.
const envKrunConformance = "SBX_TEST_KRUN_SBX"

func krunTestDriver() runtime.Driver {
	d, err := runtime.NewDriver(lang.DriverKrun, os.Getenv(envKrunConformance), nil)
	if err != nil {
		panic(err)
	}
	return d
}

// krunTools builds, once, the sbx binary (the VMM child), sbx-init next to it, and the
// stand-in libkrun (upstream 1.19 with NET).
var krunTools = sync.OnceValues(func() ([2]string, error) {
	dir, err := os.MkdirTemp("", "sbx-krun-conformance-")
	if err != nil {
		return [2]string{}, err
	}
	sbx, lib := filepath.Join(dir, "sbx"), filepath.Join(dir, "libkrun.so.1")
	for _, c := range [][]string{
		{"go", "build", "-o", sbx, "../cmd/sbx"},
		{"go", "build", "-o", filepath.Join(dir, "sbx-init"), "../cmd/sbx-init"},
		{"gcc", "-Wall", "-shared", "-fPIC", "-DSTANDIN_UPSTREAM", "-o", lib, "../testdata/krun/libkrun_standin.c", "-lpthread"},
	} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return [2]string{}, fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return [2]string{sbx, lib}, nil
})

// TestKrunDriverConformance runs the driver contract's suite against the krun driver with the
// stand-in libkrun in run mode (no KVM needed): sbx → VMM child → libkrun → sbx-init →
// payload, on a tap network.
func TestKrunDriverConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the krun driver's overlay root and tap network need root")
	}
	layer, err := busyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	tools, err := krunTools()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envKrunConformance, tools[0])
	t.Setenv("SBX_LIBKRUN", tools[1])
	t.Setenv("SBX_INIT", filepath.Join(filepath.Dir(tools[0]), "sbx-init"))
	t.Setenv("SBX_KVM_CHECK", "skip")
	t.Setenv("KRUN_STANDIN_RUN", "1")
	projectDir := t.TempDir()
	project := runtime.ProjectID("krunconf", projectDir)
	subnet := freeSubnet(t)
	next := subnet.Addr().Next().Next() // .1 is the gateway
	var mu sync.Mutex
	drivertest.Run(t, drivertest.Harness{
		NewDriver: krunTestDriver,
		Spec: func(t *testing.T, name string, argv ...string) *spec.RunSpec {
			mu.Lock()
			ip := next
			next = next.Next()
			mu.Unlock()
			return &spec.RunSpec{
				Version: spec.Version, Project: project, Name: name,
				Dir: filepath.Join(projectDir, ".sbx", "sandboxes", name), Driver: lang.DriverKrun, Generation: 1,
				Image:     spec.Image{Ref: "dir:" + layer, Layers: []string{layer}},
				Process:   spec.Process{Argv: argv, Env: []string{"PATH=/bin"}, Workdir: "/", Hostname: name},
				Resources: spec.Resources{CPUs: 1, MemoryMiB: 64},
				Network:   spec.Network{Scope: spec.ScopeGroup, Group: "ct", Subnet: subnet, IP: ip},
				Restart:   spec.RestartNo, StopTimeout: time.Second,
			}
		},
		Leftovers: func(s *spec.RunSpec) []string {
			left := nsLeftovers(t, s)
			if _, err := os.Stat(filepath.Join(s.Dir, "console.fifo")); err == nil {
				left = append(left, "file console.fifo")
			}
			return left
		},
	})
}
