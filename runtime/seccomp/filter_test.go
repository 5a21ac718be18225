//go:build linux

package seccomp

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime/seccomp/internal/policy"
)

// TestGeneratedTables regenerates every architecture's table and compares
// it with the checked-in file: run go generate in runtime/seccomp when the
// policy changed.
func TestGeneratedTables(t *testing.T) {
	for goarch := range policy.Arches {
		want, err := policy.Source(goarch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("zfilter_" + goarch + ".go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("zfilter_%s.go is stale: run go generate in runtime/seccomp", goarch)
		}
	}
	prog, err := Filter()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 100 || len(prog) > 4096 {
		t.Fatalf("%d instructions: want between 100 and BPF_MAXINSNS", len(prog))
	}
}

// TestInstall runs the test binary again under the filter and checks what
// it denies and allows.
func TestInstall(t *testing.T) {
	if os.Getenv("SBX_SECCOMP_CHILD") == "1" {
		installedChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestInstall$", "-test.v")
	cmd.Env = append(os.Environ(), "SBX_SECCOMP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func installedChild(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	prog, err := Filter()
	if err != nil {
		t.Fatal(err)
	}
	if err := Install(prog); err != nil {
		t.Fatal(err)
	}
	if v, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); v != 1 {
		t.Errorf("no_new_privs is %d", v)
	}
	denied := []struct {
		name string
		call func() error
		want error
	}{
		{"unshare(CLONE_NEWUSER)", func() error { return unix.Unshare(unix.CLONE_NEWUSER) }, unix.EPERM},
		{"unshare(CLONE_NEWNS)", func() error { return unix.Unshare(unix.CLONE_NEWNS) }, unix.EPERM},
		{"clone(CLONE_NEWUSER)", func() error {
			_, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
			return errnoErr(e)
		}, unix.EPERM},
		{"clone3", func() error {
			_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
			return errnoErr(e)
		}, unix.ENOSYS},
		{"keyctl", func() error {
			_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_USER_KEYRING, 0, 0, 0)
			return err
		}, unix.EPERM},
		{"add_key", func() error {
			_, err := unix.AddKey("user", "sbx-seccomp-test", []byte("x"), unix.KEY_SPEC_SESSION_KEYRING)
			return err
		}, unix.EPERM},
		{"request_key", func() error {
			_, err := unix.RequestKey("user", "sbx-seccomp-test", "", unix.KEY_SPEC_SESSION_KEYRING)
			return err
		}, unix.EPERM},
		{"mount", func() error { return unix.Mount("none", "/", "tmpfs", 0, "") }, unix.EPERM},
		{"socket(AF_VSOCK)", func() error {
			fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
			unix.Close(fd)
			return err
		}, unix.EPERM},
		{"bpf", func() error {
			_, _, e := unix.RawSyscall(unix.SYS_BPF, 0, 0, 0)
			return errnoErr(e)
		}, unix.EPERM},
		{"init_module", func() error { return unix.InitModule(nil, "") }, unix.EPERM},
		{"reboot", func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) }, unix.EPERM},
		{"personality(0x0040000)", func() error {
			_, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0)
			return errnoErr(e)
		}, unix.EPERM},
	}
	for _, d := range denied {
		if err := d.call(); !errors.Is(err, d.want) {
			t.Errorf("%s: %v, want %v", d.name, err, d.want)
		}
	}
	// What an ordinary program does still works.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Errorf("socket(AF_INET): %v", err)
	}
	unix.Close(fd)
	if out, err := exec.Command("/bin/sh", "-c", "echo ok").Output(); err != nil || string(out) != "ok\n" {
		t.Errorf("fork and exec under the filter: %q %v", out, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); e != 0 {
		t.Errorf("personality(query): %v", e)
	}
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// BenchmarkAssemble is what building the filter at every sandbox start
// would cost, and why sbx carries generated tables instead.
func BenchmarkAssemble(b *testing.B) {
	for b.Loop() {
		if _, err := policy.Assemble(runtime.GOARCH); err != nil {
			b.Fatal(err)
		}
	}
}
