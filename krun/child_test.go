//go:build linux

package krun_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/krun"
)

var update = flag.Bool("update", false, "rewrite golden files")

// spawnStandin starts the test binary as a VMM child against a stand-in
// variant, with extra environment for the child.
func spawnStandin(t *testing.T, ctx context.Context, variant string, cfg krun.VMConfig, extraEnv ...string) (*krun.Child, string, error) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	env := append(os.Environ(),
		envRole+"="+roleVMM,
		envLib+"="+standin(t, variant),
		"KRUN_STANDIN_LOG="+log,
	)
	env = append(env, extraEnv...)
	child, err := krun.Spawn(ctx, []string{os.Args[0]}, cfg, krun.WithChildEnv(env), krun.WithStopTimeout(5*time.Second),
		krun.WithChildLog(filepath.Join(t.TempDir(), "vmm.log")))
	if child != nil {
		t.Cleanup(func() { _ = child.Signal(syscall.SIGKILL); <-child.Done() })
	}
	return child, log, err
}

func u32(v uint32) *uint32 { return &v }

func scopePtr(s krun.Scope) *krun.Scope { return &s }

// goldenConfig builds the configs compared against testdata/krun/golden.
func goldenConfigs(dir string) map[string]struct {
	variant string
	cfg     krun.VMConfig
} {
	for _, d := range []string{"layers/base", "layers/app", "rw/root", "rw/work", "merged", "root"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return map[string]struct {
		variant string
		cfg     krun.VMConfig
	}{
		// microsandbox's fork: libkrun assembles the layers and enforces a
		// TSI scope with a static address.
		"fork_layers": {variantFork, krun.VMConfig{
			LogLevel:  krun.LogWarn,
			CPUs:      2,
			MemoryMiB: 1024,
			Layers:    []string{dir + "/layers/base", dir + "/layers/app", dir + "/rw/root"},
			Mounts: []krun.Mount{
				{Tag: "src", HostPath: dir + "/src"},
				{Tag: "cfg", HostPath: dir + "/cfg"},
			},
			Net: krun.Net{
				PortMap: []krun.PortMapping{{Host: 8080, Guest: 80}, {Host: 8443, Guest: 443}},
				Scope:   scopePtr(krun.ScopeGroup), IP: "10.88.0.5", Subnet: "10.88.0.0/24",
			},
			Rlimits:       []krun.Rlimit{{Resource: 7, Cur: 1024, Max: 4096}, {Resource: 6, Cur: 512, Max: 512}},
			Workdir:       "/app",
			ExecPath:      "/.sbx/init",
			Argv:          []string{},
			Env:           []string{},
			ConsoleOutput: dir + "/console.log",
		}},
		// The fork, no network: TSI scope none (it has no
		// krun_disable_implicit_vsock).
		"fork_none": {variantFork, krun.VMConfig{
			CPUs:          1,
			MemoryMiB:     256,
			Root:          dir + "/root",
			Net:           krun.Net{Mode: krun.NetNone},
			ExecPath:      "/.sbx/init",
			Env:           []string{},
			ConsoleOutput: dir + "/console.log",
		}},
		// Upstream 1.19 with NET: the overlay mounted by the VMM child, a
		// tap NIC, no TSI, the init's control port.
		"upstream_tap": {variantUpstream, krun.VMConfig{
			LogLevel:  krun.LogWarn,
			CPUs:      2,
			MemoryMiB: 512,
			Overlay: &krun.Overlay{
				Lower: []string{dir + "/layers/base", dir + "/layers/app"},
				Upper: dir + "/rw/root", Work: dir + "/rw/work", Merged: dir + "/merged",
			},
			Mounts:        []krun.Mount{{Tag: "sbx0", HostPath: dir + "/src"}},
			Net:           krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: "sbxt1234", MAC: "02:0a:58:00:00:05"}}},
			VsockPorts:    []krun.VsockPort{{Port: 1024, Path: dir + "/ctl.sock", Listen: true}},
			Rlimits:       []krun.Rlimit{{Resource: 7, Cur: 512, Max: 1024}},
			ExecPath:      "/.sbx/init",
			Env:           []string{},
			ConsoleOutput: dir + "/console.log",
			UID:           u32(1000),
			GID:           u32(1000),
		}},
		// Upstream, no network: no NIC, no TSI, vsock back without TSI for
		// the control port.
		"upstream_none": {variantUpstream, krun.VMConfig{
			CPUs:          1,
			MemoryMiB:     256,
			Root:          dir + "/root",
			Net:           krun.Net{Mode: krun.NetNone},
			VsockPorts:    []krun.VsockPort{{Port: 1024, Path: dir + "/ctl.sock", Listen: true}},
			ExecPath:      "/.sbx/init",
			Env:           []string{},
			ConsoleOutput: dir + "/console.log",
		}},
		// Upstream without NET, scope any: TSI with an explicit port map.
		"upstream_any": {variantUpstreamNoNet, krun.VMConfig{
			LogLevel:      krun.LogOff,
			CPUs:          4,
			MemoryMiB:     2048,
			Root:          dir + "/root",
			Net:           krun.Net{PortMap: []krun.PortMapping{{Host: 3000, Guest: 3000}}},
			ExecPath:      "/bin/app",
			Env:           []string{"A=1"},
			ConsoleOutput: dir + "/console.log",
		}},
		// Everything exported: an overlay root the library may assemble
		// itself takes the fast path.
		"full_overlay_fast_path": {variantFull, krun.VMConfig{
			CPUs:      1,
			MemoryMiB: 128,
			Overlay: &krun.Overlay{
				Lower: []string{dir + "/layers/base"},
				Upper: dir + "/rw/root", Work: dir + "/rw/work", Merged: dir + "/merged",
				PreferLibkrun: true,
			},
			Net:           krun.Net{PortMap: []krun.PortMapping{}},
			ExecPath:      "/.sbx/init",
			Env:           []string{},
			ConsoleOutput: dir + "/console.log",
		}},
	}
}

// TestGolden runs the real VMM child against the stand-in and compares the
// whole libkrun call sequence with testdata/krun/golden/<name>.jsonl.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range goldenConfigs(dir) {
		t.Run(name, func(t *testing.T) {
			os.Remove(tc.cfg.ConsoleOutput)
			ctx := context.Background()
			child, log, err := spawnStandin(t, ctx, tc.variant, tc.cfg)
			if err != nil {
				t.Fatalf("Spawn: %v", err)
			}
			// The stand-in's start_enter writes the console line, then waits
			// for SIGTERM.
			waitFor(t, func() bool {
				b, _ := os.ReadFile(tc.cfg.ConsoleOutput)
				return bytes.Contains(b, []byte("standin: guest started "+tc.cfg.ExecPath))
			})
			if err := child.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if code := child.ExitCode(); code != 0 {
				t.Errorf("exit code %d after SIGTERM", code)
			}
			raw, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(raw), dir, "$TMP")
			golden := filepath.Join("..", "testdata", "krun", "golden", name+".jsonl")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./krun -update)", err)
			}
			if got != string(want) {
				t.Errorf("call sequence differs from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func baseConfig(dir string) krun.VMConfig {
	return krun.VMConfig{
		CPUs:      1,
		MemoryMiB: 128,
		Root:      dir,
		ExecPath:  "/bin/true",
	}
}

// TestChildConfigError: a libkrun error in the child reaches the parent as a
// typed error that keeps the C function and errno.
func TestChildConfigError(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	cfg.Rlimits = []krun.Rlimit{{Resource: 99, Cur: 1, Max: 1}} // the stand-in (like libkrun's init) knows 0-15
	_, log, err := spawnStandin(t, context.Background(), variantFull, cfg)
	var ce *krun.ConfigError
	var ke *krun.Error
	if !errors.As(err, &ce) || !errors.As(err, &ke) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("err = %#v", err)
	}
	if ce.Func != "krun_set_rlimits" || ke.Func != "krun_set_rlimits" || ce.ExitCode == 0 {
		t.Errorf("ConfigError = %+v", ce)
	}
	if !strings.Contains(err.Error(), "krun_set_rlimits") {
		t.Errorf("message %q", err)
	}
	// The failed context is freed, start_enter is never reached.
	calls := readCalls(t, log)
	if last := calls[len(calls)-1].Func; last != "krun_free_ctx" {
		t.Errorf("last call %s", last)
	}
}

// TestChildRefused: what a libkrun build cannot do is refused in the child
// before any context exists, as a typed fact.
func TestChildRefused(t *testing.T) {
	for _, tc := range []struct {
		name, variant string
		edit          func(*krun.VMConfig)
		check         func(error) bool
	}{
		{"tap without NET", variantUpstreamNoNet, func(c *krun.VMConfig) {
			c.Net = krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: "t0", MAC: "02:00:00:00:00:01"}}}
		}, func(err error) bool {
			var fe *krun.FeatureError
			return errors.As(err, &fe) && fe.Feature == krun.FeatureNet && errors.Is(err, krun.ErrUnsupported)
		}},
		{"tap on the fork", variantFork, func(c *krun.VMConfig) {
			c.Net = krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: "t0", MAC: "02:00:00:00:00:01"}}}
		}, func(err error) bool {
			var me *krun.MissingError
			return errors.As(err, &me) && me.Func == "krun_add_net_tap" && me.Since == "libkrun >= 1.15"
		}},
		{"tsi scope upstream", variantUpstream, func(c *krun.VMConfig) {
			c.Net = krun.Net{Scope: scopePtr(krun.ScopePublic)}
		}, func(err error) bool { return errors.Is(err, krun.ErrMissing) }},
		{"layers upstream", variantUpstream, func(c *krun.VMConfig) {
			c.Root, c.Layers = "", []string{"/l1", "/l2"}
		}, func(err error) bool { return errors.Is(err, krun.ErrMissing) }},
		{"listening vsock on the fork", variantFork, func(c *krun.VMConfig) {
			c.VsockPorts = []krun.VsockPort{{Port: 1, Path: "/tmp/x.sock", Listen: true}}
		}, func(err error) bool { return errors.Is(err, krun.ErrMissing) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t.TempDir())
			tc.edit(&cfg)
			_, log, err := spawnStandin(t, context.Background(), tc.variant, cfg)
			var ce *krun.ConfigError
			if !errors.As(err, &ce) || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			for _, c := range readCalls(t, log) {
				if c.Func == "krun_create_ctx" {
					t.Errorf("refused config still reached libkrun: %s", c.Func)
				}
			}
		})
	}
}

func TestChildLibraryNotFound(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	env := append(os.Environ(), envRole+"="+roleVMM, envLib+"=/nonexistent/libkrun.so.1")
	_, err := krun.Spawn(context.Background(), []string{os.Args[0]}, cfg, krun.WithChildEnv(env))
	var ce *krun.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "libkrun not found") ||
		!strings.Contains(err.Error(), "/nonexistent/libkrun.so.1") {
		t.Fatalf("err = %v", err)
	}
}

func TestChildExitCode(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	child, _, err := spawnStandin(t, context.Background(), variantFull, cfg, "KRUN_STANDIN_EXIT=7")
	if err != nil {
		t.Fatal(err)
	}
	err = child.Wait(context.Background())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || child.ExitCode() != 7 {
		t.Fatalf("Wait = %v", err)
	}
}

func TestChildExitsBeforeReport(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	_, err := krun.Spawn(context.Background(), []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}, cfg)
	if err == nil || !strings.Contains(err.Error(), "status 3: boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestSpawnValidates(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	cfg.ExecPath = "/bin/a\x00b"
	cfg.CPUs = 0
	_, err := krun.Spawn(context.Background(), []string{"/bin/false"}, cfg)
	if !errors.Is(err, krun.ErrInvalidArgument) || !strings.Contains(err.Error(), "NUL") || !strings.Contains(err.Error(), "cpus") {
		t.Fatalf("err = %v", err)
	}
}

// TestContextCancel: cancelling the spawn context stops the child with SIGTERM.
func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.ConsoleOutput = filepath.Join(dir, "console.log")
	child, _, err := spawnStandin(t, ctx, variantFull, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(cfg.ConsoleOutput); return len(b) > 0 })
	cancel()
	select {
	case <-child.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("child still running after cancel")
	}
	if code := child.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0 (stand-in exits 0 on SIGTERM)", code)
	}
}

// TestParentDeath: the VMM child gets SIGTERM when the process that spawned it
// dies (Pdeathsig).
func TestParentDeath(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.ConsoleOutput = filepath.Join(dir, "console.log")
	js, _ := json.Marshal(cfg)
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), envRole+"="+roleParent, "KRUN_TEST_CONFIG="+string(js),
		envLib+"="+standin(t, variantFull), "KRUN_STANDIN_LOG="+filepath.Join(dir, "calls.jsonl"))
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("parent printed %q", line)
	}
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitFor(t, func() bool { b, _ := os.ReadFile(cfg.ConsoleOutput); return len(b) > 0 })
	if !alive(pid) {
		t.Fatal("child not running")
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	waitFor(t, func() bool { return !alive(pid) })
}

// alive reports whether pid runs (a zombie counts as dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z' && s[i+2] != 'X'
}

func TestVMConfigJSONKeepsNilAndEmpty(t *testing.T) {
	for _, tc := range []struct {
		cfg  krun.VMConfig
		want string
	}{
		{krun.VMConfig{}, `"port_map":null`},
		{krun.VMConfig{Net: krun.Net{PortMap: []krun.PortMapping{}}}, `"port_map":[]`},
		{krun.VMConfig{}, `"env":null`},
		{krun.VMConfig{Env: []string{}}, `"env":[]`},
	} {
		b, err := json.Marshal(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s lacks %s", b, tc.want)
		}
		var back krun.VMConfig
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if (back.Net.PortMap == nil) != (tc.cfg.Net.PortMap == nil) || (back.Env == nil) != (tc.cfg.Env == nil) {
			t.Errorf("%s: nil-ness lost in round trip", b)
		}
	}
}
