package sbxinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// initBin is the sbx-init binary built for the tests.
var initBin string

func TestMain(m *testing.M) {
	if sock := os.Getenv("SBXINIT_TEST_DIAL"); sock != "" {
		// A client started inside a sandbox's PID namespace by TestControlRefusesSandbox.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := DialUnix(ctx, sock); err != nil {
			fmt.Println("refused:", err)
		} else {
			c.Close()
			fmt.Println("accepted")
		}
		os.Exit(0)
	}
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // the tests that need root skip
		}
		dir, err := os.MkdirTemp("", "sbxinit-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		initBin = filepath.Join(dir, "sbx-init")
		cmd := exec.Command("go", "build", "-trimpath", "-o", initBin, "../../cmd/sbx-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build sbx-init: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the init runs in fresh mount, PID and network namespaces")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox-static (/bin/busybox): make deps")
	}
}

// applets are the busybox commands of the test root with a shell.
var applets = []string{"sh", "id", "cat", "echo", "sleep", "env", "ls", "stat", "touch", "printf", "hostname",
	"ip", "ping", "stty", "tty", "grep", "true", "kill", "ulimit", "mkdir", "wc", "head", "sed", "nc"}

// newRoot builds a root file system: busybox with a shell, or (shell false) only id, sleep
// and true, each a copy of busybox, and no /bin/sh at all.
func newRoot(t testing.TB, shell bool) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "home/app", "srv/data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if shell {
		if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, a := range applets {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		for _, a := range []string{"id", "sleep", "true"} {
			if err := os.WriteFile(filepath.Join(root, "bin", a), bb, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
		"etc/hosts":  "127.0.0.1 image-hosts\n",
		"srv/data/f": "shared\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(root, "home/app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := InstallInit(root, initBin); err != nil {
		t.Fatal(err)
	}
	return root
}

// baseConfig is a config with the usual kernel file systems and a unix control socket.
func baseConfig(argv ...string) Config {
	return Config{
		Process: Process{
			Argv: argv,
			Env:  []string{"PATH=/bin"},
		},
		Hostname: "sbxtest",
		Mounts: []Mount{
			{Type: Proc, Target: "/proc"},
			{Type: Dev, Target: "/dev"},
			{Type: Tmpfs, Target: "/run", Options: []string{"mode=0755"}},
		},
		Network: &Network{},
		Control: Control{UnixPath: ControlDir + "/" + ControlSocket},
		HideDir: true,
	}
}

// sandbox is an init running over a test root.
type sandbox struct {
	root   string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	status syscall.WaitStatus
}

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

// initCmd is the init as the ns driver runs it: PID 1 of fresh PID, mount, UTS, IPC and
// network namespaces, its root the test root.
func initCmd(root string) *exec.Cmd {
	cmd := &exec.Cmd{Path: InitPath, Args: []string{InitPath}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:       root,
		Cloneflags:   syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		Unshareflags: syscall.CLONE_NEWNS, // and makes / private: nothing leaks to the host
		Pdeathsig:    syscall.SIGKILL,
	}
	return cmd
}

// start writes cfg into root and starts the init; before, when set, runs between start and
// the test's first look (the network test moves a link in).
func start(t testing.TB, root string, cfg Config, before func(*exec.Cmd)) *sandbox {
	t.Helper()
	if err := WriteConfig(root, cfg); err != nil {
		t.Fatal(err)
	}
	s := &sandbox{root: root, cmd: initCmd(root), out: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if before != nil {
		before(s.cmd)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start init: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.status = s.cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// wait waits for the init to exit and returns its exit code and console output.
func (s *sandbox) wait(t testing.TB) (int, string) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the init did not exit; output:\n%s", s.out.String())
	}
	if s.status.Signaled() {
		t.Fatalf("the init was killed by %v; output:\n%s", s.status.Signal(), s.out.String())
	}
	return s.status.ExitStatus(), s.out.String()
}

// waitOutput waits for text in the console output.
func (s *sandbox) waitOutput(t testing.TB, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the console output:\n%s", text, s.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client connects to the init's control socket, waiting for it to listen.
func (s *sandbox) client(t testing.TB) *Client {
	t.Helper()
	sock := filepath.Join(s.root, ControlDir, ControlSocket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := DialUnix(ctx, sock)
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		select {
		case <-s.done:
			t.Fatalf("the init exited (%v) before its control socket answered: %v\n%s", s.status, err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("control socket: %v\n%s", err, s.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPayloadUserEnvRlimits(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	env := []string{`Q=he said "hi" and 'bye'`, "S=a b  c ", "N=line1\nline2", `B=back\slash $HOME`}
	cfg := baseConfig("sh", "-c", `printf '[%s]\n' "$@"; id -u; id -g; id -G; ulimit -n; ulimit -Hn; hostname; pwd; cat /etc/hostname; ls /.sbx | wc -l; echo ENV; cat /proc/self/environ`,
		"sh", `a "quoted" arg`, "two  spaces", "new\nline")
	cfg.Process.Env = append([]string{"PATH=/bin"}, env...)
	cfg.Process.User = User{Spec: "app"}
	cfg.Process.Cwd = "/home/app/work"
	cfg.Rlimits = []Rlimit{{Name: "NOFILE", Resource: syscall.RLIMIT_NOFILE, Soft: 321, Hard: 654}}
	code, out := start(t, root, cfg, nil).wait(t)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	head, environ, _ := strings.Cut(out, "ENV\n")
	want := "[a \"quoted\" arg]\n[two  spaces]\n[new\nline]\n1000\n1000\n1000 2000\n321\n654\nsbxtest\n/home/app/work\nsbxtest\n0\n"
	if head != want {
		t.Errorf("payload saw:\n%q\nwant\n%q", head, want)
	}
	vars := strings.Split(environ, "\x00")
	for _, e := range append(env, "HOME=/home/app") {
		found := false
		for _, v := range vars {
			found = found || v == e
		}
		if !found {
			t.Errorf("environment lacks %q: %q", e, vars)
		}
	}
}

func TestShellless(t *testing.T) {
	needRoot(t)
	root := newRoot(t, false)
	cfg := baseConfig("id", "-u")
	cfg.Process.User = User{Spec: "1234:1234"}
	code, out := start(t, root, cfg, nil).wait(t)
	if code != 0 || out != "1234\n" {
		t.Errorf("exit %d, output %q; want 0, \"1234\\n\"", code, out)
	}

	root = newRoot(t, false)
	code, out = start(t, root, baseConfig("sh", "-c", "true"), nil).wait(t)
	if code != ExitNotFound || !strings.Contains(out, "sbx-init: exec sh: not found in PATH /bin") {
		t.Errorf("missing program: exit %d, output %q", code, out)
	}

	root = newRoot(t, false)
	cfg = baseConfig("true")
	cfg.Process.User = User{Spec: "nosuchuser"}
	code, out = start(t, root, cfg, nil).wait(t)
	if code != ExitSetup || !strings.Contains(out, `user "nosuchuser" not found in the image's /etc/passwd`) {
		t.Errorf("unknown user: exit %d, output %q", code, out)
	}
}

func TestExitCodeAndSignal(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		script string
		code   int
		signal syscall.Signal
	}{
		{"exit 3", 3, 0},
		{"kill -KILL $$", 128 + 9, syscall.SIGKILL},
		{"kill -SEGV $$", 128 + 11, syscall.SIGSEGV},
	} {
		t.Run(tc.script, func(t *testing.T) {
			root := newRoot(t, true)
			stdinR, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdinW.Close()
			s := start(t, root, baseConfig("sh", "-c", "read x; "+tc.script), func(cmd *exec.Cmd) { cmd.Stdin = stdinR })
			stdinR.Close()
			// The payload waits for a line, so the client waits before the payload ends.
			c := s.client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				time.Sleep(100 * time.Millisecond)
				fmt.Fprintln(stdinW, "go")
			}()
			st, err := c.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != StateExited || st.Exit == nil || st.Exit.Code != tc.code || st.Exit.Signal != tc.signal {
				t.Errorf("reported %+v (exit %v), want code %d signal %d", st, st.Exit, tc.code, tc.signal)
			}
			if code, out := s.wait(t); code != tc.code {
				t.Errorf("init exit %d, want %d\n%s", code, tc.code, out)
			}
		})
	}
}

func TestSignalForwardingAndReaping(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	// The inner shell exits at once, orphaning its sleep to the init, which must reap it;
	// the payload then lists the processes' states.
	script := `sh -c 'sleep 0.2 & exit 0'; sleep 0.6; cat /proc/[0-9]*/stat | while read pid comm state rest; do echo "$comm $state"; done > /tmp/ps
trap 'echo got TERM; exit 7' TERM
echo ready
while :; do sleep 0.05; done`
	s := start(t, root, baseConfig("sh", "-c", script), nil)
	s.waitOutput(t, "ready")
	c := s.client(t)
	var ps bytes.Buffer
	ctx := context.Background()
	if code, err := c.Exec(ctx, ExecRequest{Argv: []string{"cat", "/tmp/ps"}}, nil, &ps, io.Discard); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if strings.Contains(ps.String(), " Z") || !strings.Contains(ps.String(), "(init) S") {
		t.Errorf("a zombie was left:\n%s", ps.String())
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, out := s.wait(t)
	if code != 7 || !strings.Contains(out, "got TERM") {
		t.Errorf("after SIGTERM: exit %d, output:\n%s", code, out)
	}
}

func TestControlStatusSignal(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	s := start(t, root, baseConfig("sh", "-c", "trap 'exit 9' USR1; echo ready; while :; do sleep 0.05; done"), nil)
	c := s.client(t)
	ctx := context.Background()
	// The socket listens before the payload starts: "starting" first, then "running".
	var st Status
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		st, err = c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateStarting || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.State != StateRunning || st.Pid <= 1 || st.StartedAt.IsZero() {
		t.Fatalf("status %+v; want running", st)
	}
	s.waitOutput(t, "ready")
	if err := c.Signal(ctx, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if code, out := s.wait(t); code != 9 {
		t.Errorf("exit %d, want 9\n%s", code, out)
	}
}

func TestExecPipes(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	cfg := baseConfig("sleep", "60")
	cfg.Process.User = User{Spec: "app"}
	cfg.Process.Env = []string{"PATH=/bin", "FROM=payload", "OVER=old"}
	s := start(t, root, cfg, nil)
	c := s.client(t)
	ctx := context.Background()

	var stdout, stderr bytes.Buffer
	code, err := c.Exec(ctx, ExecRequest{
		Argv: []string{"sh", "-c", `cat; echo "$FROM $OVER $(id -u) $(pwd)"; echo oops >&2; exit 5`},
		Env:  []string{`OVER=new "value"`},
		Cwd:  "/tmp",
	}, strings.NewReader("hello\nworld\n"), &stdout, &stderr)
	if err != nil || code != 5 {
		t.Fatalf("exec: code %d, %v", code, err)
	}
	if want := "hello\nworld\npayload new \"value\" 1000 /tmp\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if stderr.String() != "oops\n" {
		t.Errorf("stderr %q", stderr.String())
	}

	// Megabytes through cat, both ways, byte for byte.
	big := bytes.Repeat([]byte("0123456789abcdef\x00\xff\n"), 150000)
	stdout.Reset()
	if code, err := c.Exec(ctx, ExecRequest{Argv: []string{"cat"}}, bytes.NewReader(big), &stdout, nil); err != nil || code != 0 || !bytes.Equal(stdout.Bytes(), big) {
		t.Errorf("cat of %d bytes: %d %v, %d bytes back", len(big), code, err, stdout.Len())
	}

	// The same connection serves the next request; another user; a missing program.
	stdout.Reset()
	code, err = c.Exec(ctx, ExecRequest{Argv: []string{"id", "-u"}, User: &User{Spec: "root"}}, nil, &stdout, nil)
	if err != nil || code != 0 || stdout.String() != "0\n" {
		t.Errorf("exec as root: %d %v %q", code, err, stdout.String())
	}
	_, err = c.Exec(ctx, ExecRequest{Argv: []string{"nosuch"}}, nil, nil, nil)
	if re, ok := err.(*RemoteError); !ok || re.Code != ExitNotFound {
		t.Errorf("missing program: %v, want a RemoteError with code 127", err)
	}
	_, err = c.Exec(ctx, ExecRequest{Argv: []string{"true"}, Cwd: "/nowhere"}, nil, nil, nil)
	if err == nil || err.Error() != "exec: working directory /nowhere: no such file or directory" {
		t.Errorf("missing working directory: %v", err)
	}
	// A signal to the exec'd process.
	sigs := make(chan syscall.Signal, 1)
	sigs <- syscall.SIGTERM
	code, err = c.Exec(ctx, ExecRequest{Argv: []string{"sleep", "30"}, Signals: sigs}, nil, nil, nil)
	if err != nil || code != 128+15 {
		t.Errorf("signalled exec: %d %v, want 143", code, err)
	}
	// Context cancellation ends the exec (and the init kills the process).
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Exec(cctx, ExecRequest{Argv: []string{"sleep", "30"}}, nil, nil, nil); err != context.DeadlineExceeded {
		t.Errorf("cancelled exec: %v", err)
	}
	// Still serving other connections.
	c2 := s.client(t)
	if st, err := c2.Status(ctx); err != nil || st.State != StateRunning {
		t.Errorf("status after a cancelled exec: %+v %v", st, err)
	}
}

// lineWaiter is an io.Writer whose text can be waited for.
type lineWaiter struct {
	mu  sync.Mutex
	b   strings.Builder
	chg chan struct{}
}

func newLineWaiter() *lineWaiter { return &lineWaiter{chg: make(chan struct{}, 1)} }

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	w.mu.Unlock()
	select {
	case w.chg <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *lineWaiter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		ok := strings.Contains(w.b.String(), s)
		cur := w.b.String()
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.chg:
		case <-deadline:
			t.Fatalf("no %q in terminal output %q", s, cur)
		}
	}
}

func TestExecTTY(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	s := start(t, root, baseConfig("sleep", "60"), nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", s.out.String())
		}
	})
	c := s.client(t)
	resize := make(chan WindowSize, 1)
	stdinR, stdinW := io.Pipe()
	out := newLineWaiter()
	result := make(chan error, 1)
	var code int
	go func() {
		var err error
		code, err = c.Exec(context.Background(), ExecRequest{
			Argv:   []string{"sh", "-c", `tty; stty size; read x; until [ "$(stty size)" = "50 132" ]; do sleep 0.01; done; stty size; echo "got $x"; exit 4`},
			TTY:    true,
			Size:   WindowSize{Rows: 24, Cols: 80},
			Resize: resize,
		}, stdinR, out, nil)
		result <- err
	}()
	out.waitFor(t, "24 80")
	resize <- WindowSize{Rows: 50, Cols: 132}
	if _, err := stdinW.Write([]byte("typed\r")); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil || code != 4 {
		t.Fatalf("exec: %d %v\n%s", code, err, out.b.String())
	}
	got := out.b.String()
	for _, want := range []string{"/dev/pts/0\r\n", "24 80\r\n", "typed\r\n", "50 132\r\n", "got typed\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
}

func TestMountsAndVirtiofsShare(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rw := t.TempDir()
	cfg := baseConfig("sh", "-c", `cat /ro/f /bind/f; touch /ro/x && echo ro-writable; touch /bind/x && echo bind-writable; echo w > /rw/new; touch /tmp/ok && echo tmp-ok; cat /proc/mounts | grep -c ' /tmp tmpfs'`)
	cfg.Mounts = append(cfg.Mounts,
		Mount{Type: Virtiofs, Source: "m0", Target: "/ro", ReadOnly: true},
		Mount{Type: Virtiofs, Source: "m1", Target: "/rw"},
		Mount{Type: Bind, Source: "/srv/data", Target: "/bind", ReadOnly: true},
		Mount{Type: Tmpfs, Target: "/tmp", Options: []string{"mode=1777", "size=1m"}},
	)
	if err := WriteConfig(root, cfg); err != nil {
		t.Fatal(err)
	}
	// The stand-in libkrun's way: the shared directories bound at ShareDir/TAG. These binds
	// are made in a private mount namespace of a helper, so the host never sees them: the
	// init is started from inside it.
	code, out := startInMountNS(t, root, cfg, map[string]string{"m0": host, "m1": rw})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	want := "from host\nshared\n"
	if !strings.HasPrefix(out, want) || strings.Contains(out, "ro-writable") || strings.Contains(out, "bind-writable") || !strings.Contains(out, "tmp-ok\n1\n") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(out, "Read-only file system") {
		t.Errorf("a read-only mount was not refused as such:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(b) != "w\n" {
		t.Errorf("write through the rw share: %q %v", b, err)
	}
}

// startInMountNS runs the init from a busybox shell in a private mount namespace that first
// binds each share's host directory at root/.sbx/shares/TAG, as the stand-in libkrun does.
func startInMountNS(t *testing.T, root string, cfg Config, shares map[string]string) (int, string) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -e\n")
	for tag, dir := range shares {
		fmt.Fprintf(&script, "mount --bind '%s' '%s'\n", dir, filepath.Join(root, ShareDir, tag))
	}
	fmt.Fprintf(&script, "exec chroot '%s' %s\n", root, InitPath)
	cmd := exec.Command("/bin/busybox", "sh", "-c", script.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestSecurity(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	// A filter failing sethostname(2) with EXDEV, an errno it never gives by itself.
	const (
		ldAbs = 0x20 // BPF_LD|BPF_W|BPF_ABS
		jeqK  = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
		retK  = 0x06 // BPF_RET|BPF_K
		errno = 0x00050000
		allow = 0x7fff0000
		nr    = syscall.SYS_SETHOSTNAME
	)
	cfg := baseConfig("sh", "-c", `grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; grep CapBnd /proc/1/status; hostname other; echo ready; sleep 60`)
	cfg.Security = &Security{
		Capabilities:    []int{0, 5}, // CAP_CHOWN, CAP_KILL
		NoNewPrivileges: true,
		Seccomp: []SockFilter{
			{Code: ldAbs, K: 0},
			{Code: jeqK, K: nr, Jt: 0, Jf: 1},
			{Code: retK, K: errno | uint32(syscall.EXDEV)},
			{Code: retK, K: allow},
		},
	}
	s := start(t, root, cfg, nil)
	s.waitOutput(t, "ready")
	out := s.out.String()
	for _, want := range []string{"CapBnd:\t0000000000000021\nNoNewPrivs:\t1\nSeccomp:\t2\n", "Invalid cross-device link"} {
		if !strings.Contains(out, want) {
			t.Errorf("payload output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "CapBnd:\t0000000000000021") != 1 {
		t.Errorf("the init itself lost its capabilities:\n%s", out)
	}
	// An exec is confined the same way.
	var got bytes.Buffer
	c := s.client(t)
	if code, err := c.Exec(context.Background(), ExecRequest{Argv: []string{"grep", "-E", "^(CapBnd|Seccomp):", "/proc/self/status"}}, nil, &got, &got); err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, got.String())
	}
	if got.String() != "CapBnd:\t0000000000000021\nSeccomp:\t2\n" {
		t.Errorf("exec'd process: %q", got.String())
	}
}

// TestControlRefusesSandbox checks that a process inside the sandbox cannot use the control
// socket (it would run anything as root), even when it can reach its path.
func TestControlRefusesSandbox(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	cfg := baseConfig("sleep", "60")
	cfg.HideDir = false
	s := start(t, root, cfg, nil)
	s.client(t) // listening, and serving the host
	sock := filepath.Join(root, ControlDir, ControlSocket)
	inside := exec.Command("nsenter", "-t", fmt.Sprint(s.cmd.Process.Pid), "-p", "--", os.Args[0], "-test.run=^$")
	inside.Env = append(os.Environ(), "SBXINIT_TEST_DIAL="+sock)
	out, err := inside.CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v\n%s", err, out)
	}
	t.Logf("inside: %s", out)
	if !strings.HasPrefix(string(out), "refused:") {
		t.Errorf("a process in the sandbox's PID namespace: %s", out)
	}
	if _, err := s.client(t).Status(context.Background()); err != nil {
		t.Errorf("the host is still served: %v", err)
	}
}

// TestControlBadInput sends what no client sends: the init answers or hangs up, and goes
// on serving.
func TestControlBadInput(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	s := start(t, root, baseConfig("sleep", "60"), nil)
	s.client(t)
	sock := filepath.Join(root, ControlDir, ControlSocket)
	for _, raw := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),                                // a huge frame length
		{frameRequest, 0, 0, 0, 3, '{', 'x', '}'},                       // bad JSON
		{frameStdin, 0, 0, 0, 1, 'x'},                                   // data before any request
		append([]byte{frameRequest, 0, 0, 0, 15}, `{"op":"launch"}`...), // unknown op
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write(raw)
		// An error reply, or the init hangs up.
		typ, p, err := newWire(conn).read()
		conn.Close()
		if err == nil && (typ != frameReply || !bytes.Contains(p, []byte(`"error"`))) {
			t.Errorf("%q: reply %c %q", raw, typ, p)
		}
		if err != nil && err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%q: %v", raw, err)
		}
	}
	c := s.client(t)
	if st, err := c.Status(context.Background()); err != nil || st.State != StateRunning {
		t.Errorf("after bad input: %+v %v", st, err)
	}
	// A client speaking another protocol version is told so.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := newWire(conn)
	w.writeJSON(frameRequest, request{Op: "hello", Version: 99})
	typ, p, err := w.read()
	if err != nil || typ != frameReply || !strings.Contains(string(p), "control protocol version 99, this init speaks 1") {
		t.Errorf("version 99: %c %s %v", typ, p, err)
	}
}
