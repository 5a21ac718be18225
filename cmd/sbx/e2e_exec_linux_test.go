package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// The commands that reach into a running sandbox (exec, shell, cp) and the one-off run, end to
// end through the real binary, on each driver: krun with the stand-in libkrun in run mode,
// and ns. Both go through the in-sandbox init's control socket.

// execDriverEnv prepares driver's environment for the test.
func execDriverEnv(t *testing.T, driver string) {
	switch driver {
	case "krun":
		krunEnv(t, standinLib(t, "-DSTANDIN_UPSTREAM"))
	case "ns":
		_, _ = e2eSetup(t)
	}
}

const execSandboxfile = `
sandbox "web" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  env     = { FOO = "from-the-sandboxfile" }
  network { scope = "none" }
}
`

// execTests are the cases of every driver.
var execTests = []struct {
	name string
	fn   func(t *testing.T, driver string)
}{
	{"ExecShellCp", testExec},
	{"ShellShellless", testShellless},
	{"Run", testRun},
}

// TestE2EExecKrun: exec, shell, cp and run through the krun driver (stand-in libkrun).
func TestE2EExecKrun(t *testing.T) {
	for _, tc := range execTests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, "krun") })
	}
}

// TestE2EExecNS: the same through the ns driver; it needs the ns driver to run sbx-init.
func TestE2EExecNS(t *testing.T) {
	for _, tc := range execTests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, "ns") })
	}
}

func testExec(t *testing.T, driver string) {
	p := newProject(t, execSandboxfile)
	execDriverEnv(t, driver)
	if r := p.sbxDriver(driver, "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", p.sbxDriver(driver, "logs").stdout)
		}
	})

	t.Run("ExitCode", func(t *testing.T) {
		r := p.sbxDriver(driver, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
			t.Errorf("exec: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := p.sbxDriver(driver, "exec", "web", "true"); r.code != 0 {
			t.Errorf("exec without --: %d %s", r.code, r.stderr)
		}
	})
	t.Run("EnvUserWorkdir", func(t *testing.T) {
		r := p.sbxDriver(driver, "exec", "-e", "BAR=from-the-flag", "-u", "nobody", "-w", "/tmp", "web", "--",
			"sh", "-c", `echo "$FOO $BAR $(id -u) $(pwd)"`)
		if want := "from-the-sandboxfile from-the-flag 65534 /tmp\n"; r.code != 0 || r.stdout != want {
			t.Errorf("exec: %d %q %s, want %q", r.code, r.stdout, r.stderr, want)
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		r := p.sbxStdin(driver, "line one\nline two\n", "exec", "web", "--", "wc", "-l")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "2" {
			t.Errorf("exec with stdin: %d %q %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		r := p.sbxDriver(driver, "exec", "web", "--", "no-such-program")
		if r.code != 127 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no-such-program") {
			t.Errorf("exec of a missing program: %d %q", r.code, r.stderr)
		}
	})
	t.Run("Interrupt", func(t *testing.T) {
		// Without a terminal, Ctrl-C (SIGINT to sbx) goes to the process.
		cmd := exec.Command(p.bin, "-C", p.dir, "exec", "web", "--", "sh", "-c", "echo started; exec sleep 60")
		cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER="+driver)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 8)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "started\n" {
			t.Fatalf("exec's first output: %q %v", line, err)
		}
		_ = cmd.Process.Signal(unix.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatal("sbx exec did not end after SIGINT")
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("exit code after SIGINT %d, want 130", code)
		}
	})
	t.Run("PTY", func(t *testing.T) { testExecPTY(t, p, driver) })
	t.Run("Shell", func(t *testing.T) {
		s := startPTY(t, p, driver, 24, 80, "shell", "web")
		s.send("echo shell=$0\r")
		s.expect("shell=/bin/sh")
		s.send("exit 4\r")
		if code := s.wait(); code != 4 {
			t.Errorf("shell exit code %d, want 4", code)
		}
	})
	t.Run("Cp", func(t *testing.T) { testCp(t, p, driver) })

	// The sandbox stopped under a terminal session: sbx says so in one line, and the
	// terminal is back in its mode.
	s := startPTY(t, p, driver, 24, 80, "exec", "-it", "web", "--", "sh")
	s.send("echo $((20+3))\r")
	s.expect("23")
	if r := p.sbxDriver(driver, "stop", "web"); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	if code := s.wait(); code != 1 || !strings.Contains(s.output(), "web stopped while the process ran") {
		t.Errorf("exec when its sandbox stopped: exit code %d:\n%s", code, s.output())
	}
	s.checkRestored()

	// A stopped sandbox: one line saying how to start it.
	r := p.sbxDriver(driver, "exec", "web", "--", "true")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "'sbx start web'") {
		t.Errorf("exec into a stopped sandbox: %d %q", r.code, r.stderr)
	}
	r = p.sbxDriver(driver, "exec", "nope", "--", "true")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("exec into an unknown sandbox: %d %q", r.code, r.stderr)
	}
}

// testExecPTY drives sbx exec -it from a pseudo-terminal: a command typed in, a resize seen
// by stty, Ctrl-C interrupting a command but not the shell, the exit code, and the terminal
// back in its mode afterwards.
func testExecPTY(t *testing.T, p *project, driver string) {
	s := startPTY(t, p, driver, 30, 100, "exec", "-it", "web", "--", "sh")
	s.send("stty size\r")
	s.expect("30 100")
	if err := pty.Setsize(s.ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	s.eventually("the new size", func() bool {
		s.send("stty size\r")
		return s.waitFor("40 120", time.Second)
	})
	s.send("sleep 60; echo not-$((1+1))-interrupted\r")
	time.Sleep(300 * time.Millisecond)
	s.send("\x03")
	s.send("echo after-$((6*7))\r")
	s.expect("after-42")
	if strings.Contains(s.output(), "not-2-interrupted") {
		t.Errorf("Ctrl-C did not interrupt the command:\n%s", s.output())
	}
	s.send("exit 7\r")
	if code := s.wait(); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	s.checkRestored()
}

// ptySession is sbx running on a pseudo-terminal the test holds.
type ptySession struct {
	t      *testing.T
	ptmx   *os.File
	tty    *os.File
	cmd    *exec.Cmd
	before *unix.Termios

	mu  sync.Mutex
	out bytes.Buffer
	eof chan struct{}
}

func startPTY(t *testing.T, p *project, driver string, rows, cols uint16, args ...string) *ptySession {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, append([]string{"-C", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER="+driver, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &ptySession{t: t, ptmx: ptmx, tty: tty, cmd: cmd, before: before, eof: make(chan struct{})}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	go func() {
		defer close(s.eof)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *ptySession) send(text string) {
	s.t.Helper()
	if _, err := s.ptmx.WriteString(text); err != nil {
		s.t.Fatal(err)
	}
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *ptySession) waitFor(text string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.output(), text) {
			return true
		}
	}
	return false
}

func (s *ptySession) expect(text string) {
	s.t.Helper()
	if !s.waitFor(text, 15*time.Second) {
		s.t.Fatalf("the terminal never showed %q:\n%s", text, s.output())
	}
}

func (s *ptySession) eventually(what string, cond func() bool) {
	s.t.Helper()
	for i := 0; i < 10; i++ {
		if cond() {
			return
		}
	}
	s.t.Fatalf("timed out waiting for %s:\n%s", what, s.output())
}

// wait waits for sbx to exit and returns its exit code.
func (s *ptySession) wait() int {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		s.t.Fatalf("sbx did not exit:\n%s", s.output())
	}
	return s.cmd.ProcessState.ExitCode()
}

// checkRestored checks that the terminal is in the mode it was in before sbx.
func (s *ptySession) checkRestored() {
	s.t.Helper()
	after, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		s.t.Fatal(err)
	}
	if after.Lflag != s.before.Lflag || after.Iflag != s.before.Iflag || after.Oflag != s.before.Oflag {
		s.t.Errorf("terminal not restored: lflag %#x iflag %#x oflag %#x, was %#x %#x %#x",
			after.Lflag, after.Iflag, after.Oflag, s.before.Lflag, s.before.Iflag, s.before.Oflag)
	}
	if after.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		s.t.Errorf("terminal left raw: lflag %#x", after.Lflag)
	}
}

// sbxStdin runs sbx with input on stdin.
func (p *project) sbxStdin(driver, input string, args ...string) result {
	p.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"-C", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER="+driver)
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("sbx %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// testShellless: sbx shell on an image without a shell is one line saying to use exec.
func testShellless(t *testing.T, driver string) {
	root := t.TempDir()
	// One static program: busybox as /bin/sleep (it runs the applet of its name), no shell.
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static")
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "sleep"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newProject(t, `
sandbox "bare" {
  image   = "dir:`+root+`"
  command = ["/bin/sleep", "3600"]
  network { scope = "none" }
}
`)
	execDriverEnv(t, driver)
	if r := p.sbxDriver(driver, "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	r := p.sbxDriver(driver, "shell", "bare")
	want := "Error: bare has no shell (/bin/sh not found): use sbx exec bare -- PROGRAM\n"
	if r.code == 0 || r.stderr != want {
		t.Errorf("shell on a shell-less image: %d %q, want %q", r.code, r.stderr, want)
	}

	// A one-off of an image without even sleep runs its command as its payload: output and
	// exit code still come back.
	root2 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root2, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"echo", "false"} {
		if err := os.WriteFile(filepath.Join(root2, "bin", name), bb, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r = p.sbxDriver(driver, "run", "--image", "dir:"+root2, "--", "/bin/echo", "no-sleep-here")
	if r.code != 0 || !strings.Contains(r.stdout, "no-sleep-here\n") {
		t.Errorf("run of an image without sleep: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = p.sbxDriver(driver, "run", "-e", "GREETING=set-by-e", "-w", "/tmp", "--image", "dir:"+root2, "--", "/bin/echo", "$GREETING")
	if r.code != 0 || !strings.Contains(r.stdout, "$GREETING\n") {
		t.Errorf("run of an image without sleep, with -e and -w: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = p.sbxDriver(driver, "run", "--image", "dir:"+root2, "--", "/bin/false"); r.code != 1 {
		t.Errorf("run of an image without sleep: exit code %d, want 1 (%s)", r.code, r.stderr)
	}
}
