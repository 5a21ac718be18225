//go:build linux

package ns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childArg makes the test binary the ns child (see TestMain).
const childArg = "__ns_child"

// testCgroupParent is absolute and unique to this run: on cgroup v2 the
// test's own cgroup holds processes, so controllers cannot be enabled for
// cgroups below it (the driver uses an absolute parent, /sbx/PROJECT, for
// the same reason).
var testCgroupParent = fmt.Sprintf("/sbx-ns-test-%d", os.Getpid())

// fixture is the rootfs shared by all tests: two read-only layers.
type fixture struct {
	dir         string
	base, top   string
	skipReason  string
	cgroupsNote string
}

// fx is set once by TestMain before any test runs and only read after.
var fx fixture

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		// The sandbox side: RunChild exits by itself once the payload ran.
		if err := RunChild(os.Stdin, os.NewFile(3, "report")); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	for _, p := range Preflight() {
		if p.Fatal {
			fx.skipReason = p.String()
		} else if p.Check == "cgroups" {
			fx.cgroupsNote = p.String()
		}
	}
	if fx.skipReason == "" {
		dir, err := os.MkdirTemp("", "sbx-ns-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		fx.dir = dir
		if err := buildLayers(dir); err != nil {
			fx.skipReason = err.Error()
		}
	}
	code := m.Run()
	// The per-test cgroups are gone (Cleanup); drop their parents too.
	if cg, err := cgroupsFor(&Config{Name: "x", CgroupParent: testCgroupParent}); err == nil {
		for _, d := range cg.dirs {
			_ = os.Remove(filepath.Dir(d))
		}
	}
	return code
}

// applets are the busybox commands the tests use.
var applets = []string{"sh", "cat", "echo", "ls", "id", "hostname", "sleep", "mount", "ps", "wget", "httpd",
	"true", "false", "touch", "pwd", "env", "test", "mkdir", "rm", "grep", "wc", "head", "ip", "stat", "kill", "mknod", "cut", "sort", "tr",
	"unshare", "seq", "chmod", "cp", "ping"}

// buildLayers writes a busybox base layer and a top layer that whites out
// one of its files and makes one of its directories opaque.
func buildLayers(dir string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("no busybox (apt-get install busybox-static): %w", err)
	}
	base, top := filepath.Join(dir, "base"), filepath.Join(dir, "top")
	files := map[string]string{
		"etc/passwd":    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
		"etc/group":     "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n",
		"hidden.txt":    "from base\n",
		"dir/a":         "a\n",
		"dir/b":         "b\n",
		"etc/hosts":     "127.0.0.1 image-hosts\n",
		"etc/image.txt": "image\n",
	}
	for _, d := range []string{"bin", "tmp", "proc", "sys", "dev", "root", "home/app", "etc", "dir"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(base, "tmp"), 0o1777); err != nil {
		return err
	}
	for _, d := range []string{base, top, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(base, "home/app"), 1000, 1000); err != nil {
		return err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(base, "bin", a)); err != nil {
			return err
		}
	}
	// The top layer: a whiteout (0:0 character device) hides hidden.txt,
	// an opaque dir/ hides a and b.
	if err := unix.Mknod(filepath.Join(top, "hidden.txt"), unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	if err := os.Mkdir(filepath.Join(top, "dir"), 0o755); err != nil {
		return err
	}
	if err := unix.Setxattr(filepath.Join(top, "dir"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque xattr: %w", err)
	}
	if err := os.WriteFile(filepath.Join(top, "dir/c"), []byte("c\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(top, "top.txt"), []byte("from top\n"), 0o644); err != nil {
		return err
	}
	fx.base, fx.top = base, top
	return nil
}

// needRoot skips a test the host cannot run.
func needRoot(tb testing.TB) {
	tb.Helper()
	if fx.skipReason != "" {
		tb.Skip(fx.skipReason)
	}
}

// childArgv re-executes this test binary as the ns child.
func childArgv() []string { return []string{"/proc/self/exe", childArg} }

// newConfig is a sandbox on the shared layers with a fresh writable layer.
func newConfig(tb testing.TB, argv ...string) Config {
	tb.Helper()
	needRoot(tb)
	d := tb.TempDir()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(tb.Name()))
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	return Config{
		Name:         strings.Trim(name, "-"),
		Layers:       []string{fx.base, fx.top},
		UpperDir:     filepath.Join(d, "upper"),
		WorkDir:      filepath.Join(d, "work"),
		Argv:         argv,
		Env:          []string{"PATH=/bin"},
		CgroupParent: testCgroupParent,
	}
}

// syncBuffer collects output written while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf contains s.
func waitFor(t *testing.T, buf *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output %q", s, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start starts cfg and registers its cleanup, which also checks that the
// host's mount table is as it was.
func start(t *testing.T, cfg Config, stdout, stderr io.Writer) (*Process, error) {
	t.Helper()
	before := hostMounts(t)
	testRoot := filepath.Dir(t.TempDir()) // holds all of this test's directories
	t.Cleanup(func() {
		if err := Cleanup(cfg); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		// Only mounts that can be ours count: other work on this host may
		// mount things meanwhile. An overlay of ours names fx.dir.
		for _, m := range hostMounts(t) {
			if !contains(before, m) && (strings.Contains(m, stagingDir) || strings.Contains(m, fx.dir) || strings.Contains(m, testRoot)) {
				t.Errorf("mount left on the host: %s", m)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return Start(ctx, childArgv(), cfg, stdout, stderr)
}

// run runs cfg to its end.
func run(t *testing.T, cfg Config) (stdout string, st ExitStatus) {
	t.Helper()
	var out, errb syncBuffer
	p, err := start(t, cfg, &out, &errb)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err = p.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if errb.String() != "" {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), st
}

// hostMounts is the host's mount table without ids, which may be reused.
func hostMounts(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			lines = append(lines, strings.Join(f[2:], " "))
		}
	}
	return lines
}

func TestEcho(t *testing.T) {
	out, st := run(t, newConfig(t, "echo", "hello", "world"))
	if out != "hello world\n" || st != (ExitStatus{}) {
		t.Fatalf("got %q, %v", out, st)
	}
}

func TestExitCode(t *testing.T) {
	_, st := run(t, newConfig(t, "sh", "-c", "exit 7"))
	if st != (ExitStatus{Code: 7}) {
		t.Fatalf("status %v, want exit code 7", st)
	}
}

func TestEnvWorkdirHostname(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", `echo "$FOO|$(pwd)|$(hostname)|$HOME"`)
	cfg.Env = append(cfg.Env, "FOO=bar baz")
	cfg.Workdir = "/srv/app"
	cfg.Hostname = "box"
	out, _ := run(t, cfg)
	if want := "bar baz|/srv/app|box|/root\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestPIDNamespace(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `echo "me=$$ parent=$PPID"; ls /proc | grep -c '^[0-9]*$'; ps -o pid,args`))
	lines := strings.Split(out, "\n")
	// The Go runtime's threads in init take the pids right after 1.
	if !strings.HasSuffix(lines[0], " parent=1") || lines[0] == "me=1 parent=1" {
		t.Fatalf("payload is not init's child: %q", out)
	}
	// init, sh, and the ls and grep (or ps) of the pipeline.
	if n, _ := strconv.Atoi(lines[1]); n < 2 || n > 4 {
		t.Fatalf("/proc shows %d processes, want only the sandbox's: %q", n, out)
	}
	if !strings.Contains(out, "1 /proc/self/exe "+childArg) || strings.Contains(out, "go test") {
		t.Fatalf("ps does not show exactly the sandbox: %q", out)
	}
}

func TestOverlayWhiteouts(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `cat /top.txt; ls /dir; test -e /hidden.txt && echo visible || echo hidden`))
	if want := "from top\nc\nhidden\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestWritesPersistInUpper(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", "echo kept > /data.txt; rm /etc/image.txt")
	if _, st := run(t, cfg); st.Code != 0 {
		t.Fatalf("first run: %v", st)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.UpperDir, "data.txt")); err != nil || string(b) != "kept\n" {
		t.Fatalf("upper dir: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(fx.base, "etc/image.txt")); err != nil {
		t.Fatalf("the lower layer changed: %v", err)
	}
	cfg.Argv = []string{"sh", "-c", "cat /data.txt; test -e /etc/image.txt && echo back || echo gone"}
	if out, _ := run(t, cfg); out != "kept\ngone\n" {
		t.Fatalf("second run: %q", out)
	}
}

func TestRootVariants(t *testing.T) {
	const script = "cat /etc/image.txt; test -e /hidden.txt && echo visible || echo hidden; touch /x 2>/dev/null && echo writable || echo read-only"
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"root dir read-only", func(c *Config) { c.Layers, c.RootDir, c.UpperDir, c.WorkDir = nil, fx.base, "", "" }, "image\nvisible\nread-only\n"},
		{"root dir with upper", func(c *Config) { c.Layers, c.RootDir = nil, fx.base }, "image\nvisible\nwritable\n"},
		{"layers read-only", func(c *Config) { c.UpperDir, c.WorkDir = "", "" }, "image\nhidden\nread-only\n"},
		{"single layer read-only", func(c *Config) { c.Layers, c.UpperDir, c.WorkDir = []string{fx.base}, "", "" }, "image\nvisible\nread-only\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(t, "sh", "-c", script)
			tc.modify(&cfg)
			if out, _ := run(t, cfg); out != tc.want {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
			if _, err := os.Stat(filepath.Join(fx.base, "x")); err == nil {
				t.Fatal("the root dir was written")
			}
		})
	}
}

func TestMounts(t *testing.T) {
	host := t.TempDir()
	ro, rw, file := filepath.Join(host, "ro"), filepath.Join(host, "rw"), filepath.Join(host, "app.conf")
	for _, d := range []string{ro, rw} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t, "sh", "-c", `cat /mnt/ro/in.txt
echo x > /mnt/ro/new 2>/dev/null && echo ro-writable || echo ro-denied
echo y > /deep/rw/new && echo rw-ok
cat /etc/app/app.conf`)
	cfg.Mounts = []Mount{
		{Source: ro, Target: "/mnt/ro", ReadOnly: true},
		{Source: rw, Target: "/deep/rw"},
		{Source: file, Target: "/etc/app/app.conf", ReadOnly: true},
	}
	out, _ := run(t, cfg)
	if want := "in\nro-denied\nrw-ok\nconf\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(b) != "y\n" {
		t.Fatalf("rw mount write: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Fatal("the read-only mount was written")
	}
}

func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	// An image symlink pointing at an absolute host path must resolve
	// inside the sandbox's root, not on the host.
	cfg := newConfig(t, "sh", "-c", "ls /escape/marker")
	host := t.TempDir()
	if err := os.MkdirAll(cfg.UpperDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(cfg.UpperDir, "escape")); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Mounts = []Mount{{Source: src, Target: "/escape"}}
	if out, _ := run(t, cfg); out != "/escape/marker\n" {
		t.Fatalf("got %q", out)
	}
	// The mount landed on <root>/<host>, created inside the upper layer.
	if _, err := os.Stat(filepath.Join(cfg.UpperDir, host)); err != nil {
		t.Fatalf("target not created inside the root: %v", err)
	}
}

func TestHostsResolvConf(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", "cat /etc/hosts /etc/resolv.conf")
	cfg.Hosts = "10.0.0.1 db\n"
	cfg.ResolvConf = "nameserver 10.0.0.53\n"
	if out, _ := run(t, cfg); out != cfg.Hosts+cfg.ResolvConf {
		t.Fatalf("got %q", out)
	}
	if _, err := os.Stat(filepath.Join(cfg.UpperDir, "etc/hosts")); err == nil {
		t.Fatal("/etc/hosts was written into the writable layer")
	}
}

func TestDev(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", `echo x > /dev/null && echo null-ok
head -c 5 /dev/zero | wc -c
head -c 7 /dev/urandom | wc -c
test -c /dev/tty && test -c /dev/pts/ptmx && test -L /dev/ptmx && test -d /dev/shm && echo nodes-ok
echo shm > /dev/shm/x && cat /dev/shm/x
ls /dev/fd/ >/dev/null && echo fd-ok`))
	if want := "null-ok\n5\n7\nnodes-ok\nshm\nfd-ok\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestNetworkLoopbackOnly(t *testing.T) {
	out, _ := run(t, newConfig(t, "sh", "-c", "ip -o link | wc -l; ip -o link show lo"))
	lines := strings.SplitN(out, "\n", 2)
	if strings.TrimSpace(lines[0]) != "1" || !strings.Contains(out, "UP") {
		t.Fatalf("want only loopback, up: %q", out)
	}
}

func TestConfinement(t *testing.T) {
	// A root payload has no CAP_SYS_ADMIN or CAP_MKNOD, so it cannot
	// mount or make device nodes, and kernel-wide /proc and /sys files
	// are read-only or hidden.
	out, _ := run(t, newConfig(t, "sh", "-c", `mount -t tmpfs x /tmp 2>/dev/null && echo mounted
mknod /tmp/disk b 8 0 2>/dev/null && echo mknod
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sysctl-written
echo s > /proc/sysrq-trigger 2>/dev/null && echo sysrq-written
cat /proc/kcore 2>/dev/null | wc -c
grep -E ' /sys | /proc/sys ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1 | sort
echo done`))
	if want := "0\n/proc/sys ro\n/sys ro\ndone\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

// newNetNS makes a network namespace bound to a file, as "ip netns add"
// does, and removes it when the test ends.
func newNetNS(t *testing.T) (file string, inode uint64) {
	file = filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread ends up in the new namespace: never unlock it, so it
		// exits with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), file, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(file, unix.MNT_DETACH) })
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	return file, st.Ino
}

func TestJoinNetNS(t *testing.T) {
	cfg := newConfig(t, "stat", "-L", "-c", "%i", "/proc/self/ns/net")
	var ino uint64
	cfg.NetNS, ino = newNetNS(t)
	if out, _ := run(t, cfg); strings.TrimSpace(out) != strconv.FormatUint(ino, 10) {
		t.Fatalf("sandbox in netns %q, want %d", out, ino)
	}
}

func TestUser(t *testing.T) {
	for _, tc := range []struct{ user, want string }{
		{"", "0 0 0"},
		{"nobody", "65534 65534 65534"},
		{"65534:65534", "65534 65534 65534"},
		{"app", "1000 1000 1000 2000"},
		{"app:extra", "1000 2000 2000"},
		{"4242", "4242 0 0"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			cfg := newConfig(t, "sh", "-c", `echo $(id -u) $(id -g) $(id -G)`)
			cfg.User = tc.user
			if out, _ := run(t, cfg); strings.TrimSpace(out) != tc.want {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
		})
	}
}

func TestRlimitLowered(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", "ulimit -n; ulimit -Hn")
	cfg.Rlimits = []Rlimit{{Resource: syscall.RLIMIT_NOFILE, Soft: 512, Hard: 4096}}
	if out, _ := run(t, cfg); out != "512\n4096\n" {
		t.Fatalf("got %q", out)
	}
}

func TestStepErrors(t *testing.T) {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	hasCap := hasCapability(capSysResource)
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		step   string
		errno  syscall.Errno
		text   string
	}{
		{"raise hard rlimit", func(c *Config) {
			if hasCap {
				t.Skip("this process has CAP_SYS_RESOURCE")
			}
			c.Rlimits = []Rlimit{{Resource: syscall.RLIMIT_NOFILE, Soft: 1024, Hard: cur.Max + 1}}
		}, fmt.Sprintf("rlimit NOFILE 1024:%d", cur.Max+1), syscall.EPERM, "CAP_SYS_RESOURCE"},
		{"soft above hard", func(c *Config) {
			c.Rlimits = []Rlimit{{Resource: syscall.RLIMIT_NOFILE, Soft: 100, Hard: 10}}
		}, "rlimit NOFILE 100:10", syscall.EINVAL, "swap"},
		{"unknown user", func(c *Config) { c.User = "ghost" }, "user ghost", 0, "not found"},
		{"unknown group", func(c *Config) { c.User = "app:ghosts" }, "user app:ghosts", 0, "not found"},
		{"missing command", func(c *Config) { c.Argv = []string{"nosuch"} }, "exec nosuch", 0, "PATH"},
		{"not executable", func(c *Config) { c.Argv = []string{"/etc/passwd"} }, "exec /etc/passwd", syscall.EACCES, ""},
		{"missing layer", func(c *Config) { c.Layers = []string{"/nonexistent-layer"} }, "mount overlay", syscall.ENOENT, ""},
		{"workdir is a file", func(c *Config) { c.Workdir = "/etc/passwd" }, "workdir /etc/passwd", 0, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(t, "true")
			tc.modify(&cfg)
			p, err := start(t, cfg, io.Discard, io.Discard)
			if err == nil {
				_, _ = p.Wait()
				t.Fatal("started")
			}
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.step {
				t.Fatalf("error %v, want step %q", err, tc.step)
			}
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Errorf("error %v is not %v", err, tc.errno)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			t.Log(err)
		})
	}
}

func TestSignalForwarded(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", `trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done`)
	var out syncBuffer
	p, err := start(t, cfg, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "ready")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || st != (ExitStatus{Code: 42}) {
		t.Fatalf("status %v, %v; want exit code 42", st, err)
	}
	waitFor(t, &out, "got-term")
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after exit: %v", err)
	}
}

func TestSignalKillsPayload(t *testing.T) {
	p, err := start(t, newConfig(t, "sleep", "60"), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Wait(); st != (ExitStatus{Code: 143, Signal: syscall.SIGTERM}) {
		t.Fatalf("status %v", st)
	}
}

func TestZombiesReaped(t *testing.T) {
	// The subshell exits at once, orphaning two short-lived children to
	// init; an orphan that init does not reap stays a zombie for ever, so
	// the payload waits until both are gone from /proc.
	out, _ := run(t, newConfig(t, "sh", "-c", `(true & echo $! > /tmp/a; true & echo $! > /tmp/b); a=$(cat /tmp/a); b=$(cat /tmp/b)
for i in $(seq 200); do
	if [ ! -e /proc/$a ] && [ ! -e /proc/$b ]; then echo reaped; exit 0; fi
	sleep 0.05
done
cat /proc/$a/stat /proc/$b/stat`))
	if out != "reaped\n" {
		t.Fatalf("orphans not reaped:\n%s", out)
	}
}

// needCgroups fails the test when the sandbox got no cgroups, unless
// Preflight said the host has none (then it skips).
func needCgroups(t *testing.T, p *Process) {
	t.Helper()
	if len(p.Cgroups()) == 0 {
		if fx.cgroupsNote != "" {
			t.Skip(fx.cgroupsNote)
		}
		t.Fatalf("no cgroups although Preflight found them usable: %v", p.Warnings)
	}
}

func TestCgroupLimitsAndCleanup(t *testing.T) {
	cfg := newConfig(t, "sleep", "60")
	cfg.MemoryMiB, cfg.CPUs = 64, 1
	p, err := start(t, cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Signal(syscall.SIGKILL); _, _ = p.Wait() }()
	needCgroups(t, p)
	if len(p.Warnings) > 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
	read := func(dir, file string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	cg := p.cgroups
	if cg.v2 {
		if got := read(cg.memory, "memory.max"); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.max %s", got)
		}
		if got := read(cg.cpu, "cpu.max"); got != "100000 100000" {
			t.Errorf("cpu.max %s", got)
		}
	} else {
		if got := read(cg.cpu, "cpu.cfs_quota_us"); got != "100000" {
			t.Errorf("cpu.cfs_quota_us %s", got)
		}
		for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
			if _, err := os.Stat(filepath.Join(cg.memory, f)); err != nil && f != "memory.limit_in_bytes" {
				continue // no swap accounting
			}
			if got := read(cg.memory, f); got != strconv.Itoa(64<<20) {
				t.Errorf("%s %s", f, got)
			}
		}
		if got, want := read(cg.devices, "devices.list"), "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\nc 136:* rwm"; got != want {
			t.Errorf("devices.list:\n%s\nwant\n%s", got, want)
		}
	}
	if got := read(cg.pids, "pids.max"); got != strconv.Itoa(DefaultPids) {
		t.Errorf("pids.max %s, want the default %d", got, DefaultPids)
	}
	// The sandbox is in a cgroup of its own in every hierarchy that limits,
	// accounts for or can stop it.
	lines, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	joined := 0
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		f := strings.SplitN(l, ":", 3)
		want := f[1] == "" && (cg.v2 || cg.unified != "")
		for _, c := range strings.Split(f[1], ",") {
			want = want || v1Controllers[c]
		}
		if want {
			joined++
			if !strings.HasSuffix(l, testCgroupParent+"/"+cfg.Name) {
				t.Errorf("init's cgroup %q is not the sandbox's own", l)
			}
		}
	}
	if joined != len(cg.dirs) {
		t.Errorf("init is in %d of the sandbox's cgroups, want %d: %s", joined, len(cg.dirs), lines)
	}
	for _, d := range cg.dirs {
		if procs := strings.Fields(read(d, "cgroup.procs")); !contains(procs, strconv.Itoa(p.Pid())) || len(procs) != 2 {
			t.Errorf("%s holds %v, want init %d and its payload", d, procs, p.Pid())
		}
	}
	// A crash: SIGKILL, then Cleanup, twice.
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Wait(); st.Signal != syscall.SIGKILL {
		t.Errorf("status %v", st)
	}
	for i := 0; i < 2; i++ {
		if err := Cleanup(cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range cg.dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left: %v", d, err)
		}
	}
}

func TestMemoryLimitEnforced(t *testing.T) {
	cfg := newConfig(t, "sh", "-c", `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo survived`)
	cfg.MemoryMiB = 32
	var out syncBuffer
	p, err := start(t, cfg, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	needCgroups(t, p)
	st, err := p.Wait()
	if err != nil || st.Signal != syscall.SIGKILL || strings.Contains(out.String(), "survived") {
		t.Fatalf("status %v, %v, output %q: want the OOM killer's SIGKILL", st, err, out.String())
	}
}

func TestCleanupKillsStragglers(t *testing.T) {
	cfg := newConfig(t, "sleep", "60")
	p, err := start(t, cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	needCgroups(t, p)
	if err := Cleanup(cfg); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Wait(); st.Signal != syscall.SIGKILL {
		t.Errorf("status %v, want killed", st)
	}
}

func TestContextCancelKills(t *testing.T) {
	cfg := newConfig(t, "sleep", "60")
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, childArgv(), cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Cleanup(cfg) })
	cancel()
	if st, _ := p.Wait(); st.Signal != syscall.SIGKILL {
		t.Errorf("status %v, want killed", st)
	}
}

func TestManyLayersLongOptions(t *testing.T) {
	// 60 layers fit in a page relative to their parent; 130 do not and
	// take the fsconfig path; a colon in a path takes it too.
	for _, tc := range []struct {
		name string
		n    int
	}{{"relative", 60}, {"fsconfig", 130}, {"colon:in:path", 3}} {
		t.Run(tc.name, func(t *testing.T) { testManyLayers(t, tc.n, tc.name) })
	}
}

func testManyLayers(t *testing.T, n int, parentName string) {
	cfg := newConfig(t, "sh", "-c", "cat /layer-*.txt | wc -l; cat /top.txt")
	// As in the image store, all layers share a parent directory.
	parent := filepath.Join(t.TempDir(), parentName, strings.Repeat("p", 100))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Layers = nil
	for _, l := range []string{fx.base, fx.top} {
		link := filepath.Join(parent, filepath.Base(l))
		if err := os.Symlink(l, link); err != nil {
			t.Fatal(err)
		}
		cfg.Layers = append(cfg.Layers, link)
	}
	for i := 0; i < n; i++ {
		l := filepath.Join(parent, fmt.Sprintf("%064d", i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, fmt.Sprintf("layer-%d.txt", i)), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.Layers = append(cfg.Layers, l)
	}
	if opts, dir, _ := overlayOptions(cfg.Layers, cfg.UpperDir, cfg.WorkDir, 1<<20); n > 50 && (dir != "" || len(opts) < os.Getpagesize()) {
		t.Fatalf("the absolute options (%d bytes) should not fit in a page", len(opts))
	}
	if out, _ := run(t, cfg); out != fmt.Sprintf("%d\nfrom top\n", n) {
		t.Fatalf("got %q", out)
	}
}

func TestOverlayOptions(t *testing.T) {
	layers := []string{"/s/layers/aa", "/s/layers/bb", "/s/layers/cc"}
	data, dir, err := overlayOptions(layers, "/p/up", "/p/work", 4096)
	if err != nil || dir != "" || data != "lowerdir=/s/layers/cc:/s/layers/bb:/s/layers/aa,upperdir=/p/up,workdir=/p/work,index=off,xino=off" {
		t.Fatalf("%q %q %v", data, dir, err)
	}
	data, dir, err = overlayOptions(layers, "/p/up", "/p/work", 90)
	if err != nil || dir != "/s/layers" || !strings.HasPrefix(data, "lowerdir=cc:bb:aa,") {
		t.Fatalf("%q %q %v", data, dir, err)
	}
	if _, _, err = overlayOptions(layers, "/p/up", "/p/work", 40); err == nil {
		t.Fatal("no error for options that never fit")
	}
	if _, _, err = overlayOptions([]string{"/a:b"}, "", "", 4096); err == nil {
		t.Fatal("no error for a colon in a path")
	}
}

func TestCgroupDir(t *testing.T) {
	for _, tc := range []struct {
		m      cgroupMount
		own    string
		parent string
		want   string
	}{
		{cgroupMount{point: "/sys/fs/cgroup/memory", root: "/"}, "/ci/job1", "sbx/shop", "/sys/fs/cgroup/memory/ci/job1/sbx/shop/db"},
		{cgroupMount{point: "/sys/fs/cgroup/memory", root: "/"}, "/ci/job1", "/sbx/shop", "/sys/fs/cgroup/memory/sbx/shop/db"},
		{cgroupMount{point: "/sys/fs/cgroup/cpu", root: "/"}, "/", "sbx/shop", "/sys/fs/cgroup/cpu/sbx/shop/db"},
		{cgroupMount{point: "/sys/fs/cgroup", root: "/"}, "/user.slice/x.scope", "", "/sys/fs/cgroup/user.slice/x.scope/db"},
		// In a container the mount shows the container's cgroup as root.
		{cgroupMount{point: "/sys/fs/cgroup/memory", root: "/docker/abc"}, "/docker/abc/sub", "sbx", "/sys/fs/cgroup/memory/sub/sbx/db"},
		{cgroupMount{point: "/sys/fs/cgroup/memory", root: "/docker/abc"}, "/docker/abc", "../../escape", "/sys/fs/cgroup/memory/escape/db"},
	} {
		if got := cgroupDir(tc.m, tc.own, &Config{Name: "db", CgroupParent: tc.parent}); got != tc.want {
			t.Errorf("cgroupDir(%+v, %q, %q) = %q, want %q", tc.m, tc.own, tc.parent, got, tc.want)
		}
	}
}

func TestPreflight(t *testing.T) {
	problems := Preflight()
	for _, p := range problems {
		t.Logf("%v (fatal %v)", p, p.Fatal)
		if p.Check == "" || p.Detail == "" || p.Fix == "" {
			t.Errorf("problem %+v lacks a check, detail or fix", p)
		}
	}
	// The checks against what this host is known to have.
	fatal := func(check string) bool {
		for _, p := range problems {
			if p.Check == check && p.Fatal {
				return true
			}
		}
		return false
	}
	if want := os.Geteuid() != 0 && !hasCapability(capSysAdmin); fatal("privileges") != want {
		t.Errorf("privileges problem %v, want %v (euid %d)", !want, want, os.Geteuid())
	}
	if want := !hasFilesystem("overlay"); fatal("overlayfs") != want {
		t.Errorf("overlayfs problem %v, want %v", !want, want)
	}
	if fatal("seccomp") {
		t.Error("seccomp reported missing on a host that has it")
	}
	if b, _ := os.ReadFile("/proc/self/status"); strings.Contains(string(b), "\nSeccomp_filters:") && !hasSeccompFilters() {
		t.Error("hasSeccompFilters says no on a kernel that counts seccomp filters")
	}
	if fatal("namespaces") {
		t.Error("namespaces reported missing on a host with /proc/self/ns")
	}
	if !hasFilesystem("proc") || hasFilesystem("no-such-fs") || hasFilesystem("") {
		t.Error("hasFilesystem does not read /proc/filesystems right")
	}
	if os.Geteuid() == 0 && !hasCapability(capSysAdmin) && os.Getenv("container") == "" {
		t.Error("root without CAP_SYS_ADMIN in its effective set: hasCapability misreads /proc/self/status")
	}
	if hasCapability(63) {
		t.Error("capability 63 does not exist")
	}
}

// BenchmarkStartStop measures a sandbox's start overhead: namespaces,
// cgroups, overlay, /dev, pivot_root, seccomp and init, around a payload
// that does nothing. Besides the wall time it reports the CPU time (user +
// system, this process and the sandbox's) per start, which a loaded machine
// disturbs far less.
func BenchmarkStartStop(b *testing.B) {
	cfg := newConfig(b, "true")
	b.Cleanup(func() { _ = Cleanup(cfg) })
	ctx := context.Background()
	cpu := func() time.Duration {
		var self, children syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
		var d time.Duration
		for _, r := range []syscall.Rusage{self, children} {
			d += time.Duration(r.Utime.Nano() + r.Stime.Nano())
		}
		return d
	}
	before := cpu()
	for b.Loop() {
		p, err := Start(ctx, childArgv(), cfg, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64((cpu()-before).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
