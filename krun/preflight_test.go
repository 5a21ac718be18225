//go:build linux

package krun_test

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/krun"
	"golang.org/x/sys/unix"
)

func problems(t *testing.T, err error) []krun.Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var pe *krun.PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("Preflight = %v, want *PreflightError", err)
	}
	return pe.Problems
}

func TestPreflight(t *testing.T) {
	notKVM := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(notKVM, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []krun.PreflightOption
		want [][]string // per problem, substrings of What+Fix
	}{
		{
			name: "nothing works",
			opts: []krun.PreflightOption{
				krun.WithKVMDevice("/nonexistent/kvm"),
				krun.WithLibrary(krun.WithCandidates("/nonexistent/libkrun.so.1", "libkrun-nope.so")),
			},
			want: [][]string{
				{"/nonexistent/kvm does not exist", "kvm_intel"},
				{"libkrun not found", "/nonexistent/libkrun.so.1", "libkrun-nope.so", "install libkrun (see README)"},
			},
		},
		{
			name: "not a device",
			opts: []krun.PreflightOption{krun.WithKVMDevice(notKVM), krun.WithLibrary(krun.WithPath(standin(t, variantFull)))},
			want: [][]string{{"is not a character device"}},
		},
		{
			name: "device without the KVM API",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantFull)))},
			want: [][]string{{"/dev/null does not speak the KVM API"}},
		},
		{
			name: "upstream without NET",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantUpstreamNoNet))),
				krun.WithConfig(&krun.VMConfig{CPUs: 1, MemoryMiB: 1, Layers: []string{"/l"}, ExecPath: "/x",
					Net: krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: "t", MAC: "02:00:00:00:00:01"}}}})},
			want: [][]string{
				{"does not speak the KVM API"},
				{"a root of layers needs krun_set_overlayfs_root", "microsandbox"},
				{"a tap network needs krun_add_net_tap", "built without NET (build option NET=1)", "install a libkrun built with NET=1"},
			},
		},
		{
			name: "fork lacks setuid",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantFork))),
				krun.WithConfig(&krun.VMConfig{CPUs: 1, MemoryMiB: 1, Root: "/r", ExecPath: "/x", UID: u32(1), GID: u32(1)})},
			want: [][]string{
				{"does not speak the KVM API"},
				{"krun_setuid", "1.11"},
				{"krun_setgid", "1.11"},
			},
		},
		{
			name: "KVM check skipped",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/nonexistent/kvm"), krun.WithoutKVMCheck(), krun.WithLibrary(krun.WithPath(standin(t, variantUpstream)))},
		},
		{
			name: "broken library",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantBroken)))},
			want: [][]string{{"does not speak the KVM API"}, {"lacks krun_set_exec", "install a current libkrun"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := krun.Preflight(tt.opts...)
			got := problems(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%q\nwant %d", got, len(tt.want))
			}
			for i, p := range got {
				if p.Fix == "" {
					t.Errorf("problem %q has no fix", p.What)
				}
				for _, s := range tt.want[i] {
					if !strings.Contains(p.String(), s) {
						t.Errorf("problem %d %q lacks %q", i, p, s)
					}
				}
				if p.Err == nil || !errors.Is(err, p.Err) {
					t.Errorf("problem %q carries no typed error reachable from the PreflightError", p.What)
				}
				if strings.Contains(p.String(), "--driver") {
					t.Errorf("problem %q gives sbx advice; krun speaks about libkrun only", p)
				}
			}
		})
	}
}

// TestPreflightHostKVM runs the real check against this host's /dev/kvm: it
// must either pass or explain itself.
func TestPreflightHostKVM(t *testing.T) {
	err := krun.Preflight(krun.WithLibrary(krun.WithPath(standin(t, variantFull))))
	for _, p := range problems(t, err) {
		if p.Fix == "" || !strings.Contains(p.What, "/dev/kvm") {
			t.Errorf("unexpected problem %q", p)
		}
		t.Logf("host: %s", p)
	}
}

// TestPreflightKVMPermission runs the check as an unprivileged user against
// a KVM device only root may open, and expects to be told which group to join.
func TestPreflightKVMPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	// A KVM device node only root and its group may open: /dev/kvm where it is so, else one
	// made here (machines without KVM, like CI), with the same numbers.
	kvm := "/dev/kvm"
	fi, err := os.Stat(kvm)
	if err != nil || fi.Mode().Perm()&0o006 != 0 {
		devDir, err := os.MkdirTemp("", "krun-dev-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(devDir)
		if err := os.Chmod(devDir, 0o755); err != nil {
			t.Fatal(err)
		}
		kvm = filepath.Join(devDir, "kvm")
		if err := syscall.Mknod(kvm, syscall.S_IFCHR|0o660, int(unix.Mkdev(10, 232))); err != nil {
			t.Fatalf("make a KVM device node: %v", err)
		}
		if fi, err = os.Stat(kvm); err != nil {
			t.Fatal(err)
		}
	}
	st := fi.Sys().(*syscall.Stat_t)
	group := strconv.Itoa(int(st.Gid))
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	// The unprivileged user must be able to run the test binary and load the stand-in.
	dir, err := os.MkdirTemp("", "krun-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, c := range [][2]string{{os.Args[0], "krun.test"}, {standin(t, variantFull), "libkrun.so.1"}} {
		b, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c[1]), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "krun.test"))
	cmd.Env = []string{envRole + "=" + rolePreflight, "KRUN_TEST_KVM=" + kvm, envLib + "=" + filepath.Join(dir, "libkrun.so.1")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{kvm + " is not accessible", "join group " + group, "usermod -aG " + group} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

// TestImports keeps krun free of sbx knowledge: it imports no other sbx
// package.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "github.com/sbx-dev/sbx") {
				t.Errorf("%s imports %s", f, imp.Path.Value)
			}
		}
	}
}
