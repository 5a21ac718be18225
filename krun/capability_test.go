//go:build linux

package krun_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/krun"
)

// TestCapabilityMessages checks, against every stand-in variant, what each
// kind of VM config needs and how the missing pieces are named, against
// testdata/krun/golden/capabilities.txt.
func TestCapabilityMessages(t *testing.T) {
	tap := krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: "t0", MAC: "02:00:00:00:00:01"}}}
	scope := krun.ScopeGroup
	needs := []struct {
		name string
		cfg  krun.VMConfig
	}{
		{"directory root, TSI", krun.VMConfig{Root: "/r"}},
		{"layers", krun.VMConfig{Layers: []string{"/l", "/u"}}},
		{"overlay, libkrun preferred", krun.VMConfig{Overlay: &krun.Overlay{Lower: []string{"/l"}, Upper: "/u", Work: "/w", Merged: "/m", PreferLibkrun: true}}},
		{"tap NIC", krun.VMConfig{Root: "/r", Net: tap}},
		{"no network, control port", krun.VMConfig{Root: "/r", Net: krun.Net{Mode: krun.NetNone},
			VsockPorts: []krun.VsockPort{{Port: 1024, Path: "/c.sock", Listen: true}}}},
		{"TSI scope", krun.VMConfig{Root: "/r", Net: krun.Net{Scope: &scope}}},
		{"VMM uid", krun.VMConfig{Root: "/r", UID: u32(1)}},
	}
	var b strings.Builder
	for _, v := range []string{variantFull, variantUpstream, variantUpstreamNoNet, variantFork} {
		lib, err := krun.Open(krun.WithPath(standin(t, v)))
		if err != nil {
			t.Fatal(err)
		}
		caps := lib.Capabilities()
		fmt.Fprintf(&b, "== %s\nmissing: %s\nfeatures: %v\n", v, strings.Join(caps.Missing, " "), caps.Features)
		for _, n := range needs {
			cfg := n.cfg
			cfg.CPUs, cfg.MemoryMiB, cfg.ExecPath = 1, 64, "/.sbx/init"
			if err := cfg.Validate(); err != nil {
				t.Fatalf("%s: %v", n.name, err)
			}
			err := lib.Check(&cfg)
			msg := "ok"
			if err != nil {
				msg = strings.ReplaceAll(err.Error(), standinDir, "$LIB")
				var me *krun.MissingError
				var fe *krun.FeatureError
				if !errors.As(err, &me) && !errors.As(err, &fe) {
					t.Errorf("%s on %s: untyped %v", n.name, v, err)
				}
			}
			fmt.Fprintf(&b, "%s: %s\n", n.name, strings.ReplaceAll(msg, "\n", "\n  "))
		}
		_ = lib.Close()
	}
	got := b.String()
	golden := filepath.Join("..", "testdata", "krun", "golden", "capabilities.txt")
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
		t.Errorf("capability messages differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestSummarize turns what a crashing VMM prints into one line.
func TestSummarize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"thread '<unnamed>' panicked at src/vmm/src/linux/vstate.rs:1224:53:\ncalled `Result::unwrap()` on an `Err` value: Kvm(Error(2)): Failed to open /dev/kvm\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\nSIGABRT: abort\nPC=0x7f m=0 sigcode=18446744073709551610\n\ngoroutine 1 gp=0xc000002380 m=0 mp=0x5b5d40 [syscall, locked to thread]:\n",
			"libkrun could not open KVM: called `Result::unwrap()` on an `Err` value: Kvm(Error(2)): Failed to open /dev/kvm"},
		{"thread 'main' panicked at 'index out of bounds', src/lib.rs:3:4\n", "libkrun aborted: index out of bounds"},
		{"[2026-01-01T00:00:00Z ERROR devices] virtio-fs: no such directory\nSIGABRT: abort\nPC=0x1\ngoroutine 1 [running]:\n", "[2026-01-01T00:00:00Z ERROR devices] virtio-fs: no such directory"},
		{"SIGSEGV: segmentation violation\nPC=0x0\n", "the VMM process crashed (SIGSEGV: segmentation violation)"},
	} {
		if got := krun.Summarize(tc.in); got != tc.want {
			t.Errorf("Summarize(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestChildAbortSummarized: libkrun aborting the VMM (no KVM) yields one
// clear line, the whole output staying in the log file.
func TestChildAbortSummarized(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	logPath := filepath.Join(dir, "vmm.log")
	env := append(os.Environ(), envRole+"="+roleVMM, envLib+"="+standin(t, variantUpstream),
		"KRUN_STANDIN_LOG="+filepath.Join(dir, "calls.jsonl"), "KRUN_STANDIN_ABORT=kvm")
	child, err := krun.Spawn(context.Background(), []string{os.Args[0]}, cfg, krun.WithChildEnv(env), krun.WithChildLog(logPath))
	if err != nil {
		t.Fatal(err)
	}
	err = child.Wait(context.Background())
	var ee *krun.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait = %v", err)
	}
	t.Logf("%v", err)
	if !strings.HasPrefix(ee.Summary, "libkrun could not open KVM") || strings.Contains(ee.Summary, "\n") {
		t.Errorf("summary %q", ee.Summary)
	}
	if ee.Log != logPath || !strings.Contains(err.Error(), logPath) {
		t.Errorf("error %q does not point at the log", err)
	}
	raw, _ := os.ReadFile(logPath)
	if !strings.Contains(string(raw), "panicked at") {
		t.Errorf("log lacks the panic:\n%s", raw)
	}
}
