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
		name  string
		needs krun.Needs
		opts  []krun.PreflightOption
		want  [][]string // per problem, substrings of What+Fix
	}{
		{
			name: "nothing works",
			opts: []krun.PreflightOption{
				krun.WithKVMDevice("/nonexistent/kvm"),
				krun.WithLibrary(krun.WithCandidates("/nonexistent/libkrun.so.1", "libkrun-nope.so")),
			},
			want: [][]string{
				{"/nonexistent/kvm does not exist", "kvm_intel", "--driver ns"},
				{"libkrun not found", "/nonexistent/libkrun.so.1", "libkrun-nope.so", "install libkrun (see README)", "--driver ns"},
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
			want: [][]string{{"/dev/null does not speak the KVM API", "--driver ns"}},
		},
		{
			name:  "upstream lacks scopes and overlay",
			needs: krun.Needs{Scopes: []krun.Scope{krun.ScopeAny, krun.ScopeGroup, krun.ScopeNone}, Overlay: true, StaticIP: true},
			opts:  []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantUpstream)))},
			want: [][]string{
				{"does not speak the KVM API"},
				{"network scope group needs krun_set_tsi_scope", "use scope none or any"},
				{"static guest IP", "krun_set_tsi_scope"},
				{"layered root", "krun_set_overlayfs_root", "microsandbox"},
			},
		},
		{
			name:  "fork lacks setuid",
			needs: krun.Needs{Scopes: []krun.Scope{krun.ScopeNone}, UIDGID: true},
			opts:  []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantFork)))},
			want: [][]string{
				{"does not speak the KVM API"},
				{"krun_setuid", "1.17"},
				{"krun_setgid", "1.17"},
			},
		},
		{
			name: "broken library",
			opts: []krun.PreflightOption{krun.WithKVMDevice("/dev/null"), krun.WithLibrary(krun.WithPath(standin(t, variantBroken)))},
			want: [][]string{{"does not speak the KVM API"}, {"lacks krun_set_exec", "install a current libkrun"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, krun.Preflight(tt.needs, tt.opts...))
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
			}
		})
	}
}

// TestPreflightHostKVM runs the real check against this host's /dev/kvm: it
// must either pass or explain itself.
func TestPreflightHostKVM(t *testing.T) {
	err := krun.Preflight(krun.Needs{}, krun.WithLibrary(krun.WithPath(standin(t, variantFull))))
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
	fi, err := os.Stat("/dev/kvm")
	if err != nil || fi.Mode().Perm()&0o006 != 0 {
		t.Skip("needs a /dev/kvm closed to others")
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
	cmd.Env = []string{envRole + "=" + rolePreflight, "KRUN_TEST_KVM=/dev/kvm", envLib + "=" + filepath.Join(dir, "libkrun.so.1")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"/dev/kvm is not accessible", "join group " + group, "usermod -aG " + group, "--driver ns"} {
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

// TestMountScript runs the shell prelude with mkdir and mount replaced by
// echo, checking how it splits KRUN_VIRTIOFS_MOUNTS.
func TestMountScript(t *testing.T) {
	mounts := []krun.Mount{{Tag: "src", Target: "/app/src"}, {Tag: "cfg", Target: "/etc/my app", ReadOnly: true}}
	script := "mkdir() { :; }; mount() { echo \"$@\"; }; " + krun.MountScript + `exec "$@"`
	cmd := exec.Command("/bin/sh", "-c", script, "sh", "echo", "workload", "a,b")
	cmd.Env = []string{krun.MountsEnv + "=" + krun.MountsEnvValue(mounts)}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "-t virtiofs -o rw src /app/src\n-t virtiofs -o ro cfg /etc/my app\nworkload a,b\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
