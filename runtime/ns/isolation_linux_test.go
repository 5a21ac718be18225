//go:build linux

package ns

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPidsLimit: a fork bomb stops at the sandbox's pids limit.
func TestPidsLimit(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", `for i in $(seq 200); do sleep 30 & done; echo survived`)
	cfg.Pids = 32
	var out, errb syncBuffer
	p, err := start(t, cfg, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	needCgroups(t, p)
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "survived") || st.Code == 0 || !strings.Contains(errb.String(), "can't fork") {
		t.Fatalf("status %v, stdout %q, stderr %q: want the shell to fail to fork", st, out.String(), errb.String())
	}
}

// TestDevicesDenied: device nodes from an image layer (the root is nodev)
// and from a bind mount (the device cgroup) cannot be opened, and root in
// the sandbox cannot make one.
func TestDevicesDenied(t *testing.T) {
	dir := t.TempDir()
	layer, mnt := filepath.Join(dir, "layer"), filepath.Join(dir, "mnt")
	for _, d := range []string{layer, mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		// /dev/kmsg: reading it shows the host's kernel log.
		if err := unix.Mknod(filepath.Join(d, "kmsg"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
	}
	cfg := newConfig(t, "sh", "-c", `head -c 1 /kmsg >/dev/null && echo layer-kmsg-read
echo x > /null && echo layer-null-written
head -c 1 /mnt/kmsg >/dev/null && echo mount-kmsg-read
echo x > /mnt/null && echo mount-null-written
mknod /tmp/kmsg c 1 11 && echo mknod
echo x > /dev/null && echo dev-null-ok
grep -E '^overlay / ' /proc/mounts | grep -q nosuid.*nodev && echo root-nosuid-nodev
echo done`)
	cfg.Layers = append(cfg.Layers, layer)
	cfg.Mounts = []Mount{{Source: mnt, Target: "/mnt"}}
	var out, errb syncBuffer
	p, err := start(t, cfg, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	needCgroups(t, p)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	// The allowed /dev/null works when bind mounted; the rest fails.
	if want := "mount-null-written\ndev-null-ok\nroot-nosuid-nodev\ndone\n"; out.String() != want {
		t.Fatalf("got %q, want %q; stderr:\n%s", out.String(), want, errb.String())
	}
	t.Logf("stderr:\n%s", errb.String())
}

// TestDeviceProgram checks the cgroup v2 device program by itself: a
// process started in a v2 cgroup with it attached can open /dev/null but
// not /dev/kmsg. (On a hybrid host the sandboxes use the v1 controller;
// this covers what v2 hosts use.)
func TestDeviceProgram(t *testing.T) {
	needRoot(t)
	own, err := ownCgroups()
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	for _, m := range mounts {
		if m.v2 {
			dir = cgroupDir(m, own[""], &Config{Name: "devprog-" + strconv.Itoa(os.Getpid()), CgroupParent: testCgroupParent})
			break
		}
	}
	if dir == "" {
		t.Skip("no cgroup v2 hierarchy mounted")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := cgroupSet{dirs: []string{dir}}
	t.Cleanup(func() {
		_ = cg.remove()
		_ = os.Remove(filepath.Dir(dir)) // the parent, unless other tests' cgroups are in it
	})
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	try := func() string {
		cmd := exec.Command("/bin/sh", "-c", `exec 3</dev/null && echo null-opened; exec 4</dev/kmsg && echo kmsg-opened; echo done`)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		out, _ := cmd.Output() // the shell exits 2 when a redirection fails
		return string(out)
	}
	if out := try(); out != "null-opened\nkmsg-opened\ndone\n" {
		t.Fatalf("without the program: %q (this host denies /dev/kmsg already)", out)
	}
	if err := attachDeviceProgram(dir); err != nil {
		t.Fatal(err)
	}
	if out := try(); out != "null-opened\n" {
		t.Fatalf("with the program: %q, want only null-opened", out)
	}
}

// TestCgroupNamespace: the sandbox sees itself at the root of every
// hierarchy and cannot make user or other namespaces.
func TestCgroupNamespace(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `cut -d: -f3 /proc/self/cgroup | sort -u
unshare -U true 2>/dev/null && echo userns
unshare -C true 2>/dev/null && echo cgroupns
unshare -m true 2>/dev/null && echo mountns
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t'
echo done`))
	if want := "/\nNoNewPrivs:1\nSeccomp:2\ndone\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

// TestMaskedPaths: runc's masked paths read as empty; /proc/sys and /sys
// are read-only.
func TestMaskedPaths(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts /proc/sched_debug; do
	[ -e $f ] && echo "$f $(cat $f 2>/dev/null | wc -c)"
done
for d in /sys/firmware /sys/dev/block; do [ -d $d ] && echo "$d $(ls -A $d | wc -l)"; done
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sysctl-written
echo 1 > /sys/kernel/profiling 2>/dev/null && echo sys-written
echo done`))
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] != "0" {
			t.Errorf("%s is not masked: %s bytes or entries", f[0], f[1])
		} else if len(f) != 2 && l != "done" {
			t.Errorf("unexpected %q", l)
		}
	}
	if !strings.Contains(out, "/proc/interrupts 0") || !strings.HasSuffix(out, "done\n") {
		t.Errorf("output %q", out)
	}
}

// TestWritableLayerPrivate: the directory holding the writable layer is
// 0700, also when it existed with a wider mode.
func TestWritableLayerPrivate(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid && echo ok")
	parent := filepath.Dir(cfg.UpperDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, cfg); out != "ok\n" {
		t.Fatalf("got %q", out)
	}
	st, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("%s has mode %v, want 0700", parent, st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(cfg.UpperDir, "suid")); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("the setuid file in the writable layer: %v %v", st, err)
	}
	cfg.WorkDir = filepath.Join(t.TempDir(), "work")
	if _, err := Start(t.Context(), childArgv(), cfg, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "same directory") {
		t.Fatalf("upper and work in different directories: %v", err)
	}
}

// TestPingSockets: without CAP_NET_RAW, ping has to use ICMP datagram
// sockets (iputils' ping does; Debian's busybox does not), which every
// group of the sandbox may open.
func TestPingSockets(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `cat /proc/sys/net/ipv4/ping_group_range; ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 || echo no-raw-ping`))
	if out != "0\t2147483647\nno-raw-ping\n" {
		t.Errorf("got %q", out)
	}
}
