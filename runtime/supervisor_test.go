package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// hostDriver runs the payload as a plain host process: real processes, no isolation. It lets
// the supervisor's policy be tested without root; the krun and ns drivers have their own tests
// and the conformance suite. A guest port is a port on 127.0.0.1.
type hostDriver struct{ closes atomic.Int32 }

func (*hostDriver) Name() string                                   { return "host" }
func (*hostDriver) CheckHost(context.Context) error                { return nil }
func (*hostDriver) Validate(context.Context, *spec.RunSpec) error  { return nil }
func (d *hostDriver) Cleanup(context.Context, *spec.RunSpec) error { return nil }
func (d *hostDriver) Start(ctx context.Context, s *spec.RunSpec, console io.Writer) (Instance, error) {
	cmd := exec.Command(s.Process.Argv[0], s.Process.Argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = s.Process.Env, s.Process.Workdir, console, console
	// Its own process group, signalled whole, as a pid namespace would be.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	i := &hostInstance{d: d, cmd: cmd, done: make(chan struct{})}
	go func() { i.err = cmd.Wait(); close(i.done) }()
	return i, nil
}

type hostInstance struct {
	d    *hostDriver
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

func (i *hostInstance) Pid() int { return i.cmd.Process.Pid }
func (i *hostInstance) Signal(s os.Signal) error {
	select {
	case <-i.done:
		return os.ErrProcessDone
	default:
	}
	return syscall.Kill(-i.cmd.Process.Pid, s.(syscall.Signal))
}
func (i *hostInstance) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-i.done:
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
	ex := Exit{At: time.Now(), Code: i.cmd.ProcessState.ExitCode()}
	if ws, ok := i.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ex.Signal = unix.SignalName(ws.Signal())
	} else if i.err != nil && !errors.As(i.err, new(*exec.ExitError)) {
		ex.Err = i.err.Error()
	}
	return ex, nil
}
func (i *hostInstance) DialGuest(ctx context.Context, port int) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}
func (i *hostInstance) Close(context.Context) error {
	i.once.Do(func() {
		_ = i.Signal(syscall.SIGKILL)
		<-i.done
		i.d.closes.Add(1)
	})
	return nil
}

func testSpec(t *testing.T, script, restart string) *spec.RunSpec {
	t.Helper()
	return &spec.RunSpec{
		Version: spec.Version, Project: "p-00000000", Name: "t",
		Dir:         t.TempDir(),
		Driver:      "host",
		Image:       spec.Image{Layers: []string{"/"}},
		Process:     spec.Process{Argv: []string{"/bin/sh", "-c", script}, Env: []string{defaultPath}, Workdir: "/"},
		Network:     spec.Network{Scope: spec.ScopeAny},
		Restart:     spec.Restart(restart),
		StopTimeout: 200 * time.Millisecond,
	}
}

// waitConsole waits until the console log of dir contains s.
func waitConsole(t *testing.T, dir, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(consolePath(dir)); strings.Contains(string(b), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(consolePath(dir))
	t.Fatalf("console never showed %q:\n%s", s, b)
}

func fastBackoff() *Backoff {
	return &Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, ResetAfter: time.Minute}
}

func waitRecord(t *testing.T, dir string, ok func(*Record) bool) *Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, _ := ReadRecord(dir); r != nil && ok(r) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, _ := ReadRecord(dir)
	t.Fatalf("record never reached the expected state; last: %+v", r)
	return nil
}

func TestSuperviseRestartPolicies(t *testing.T) {
	t.Run("on-failure restarts a failing payload", func(t *testing.T) {
		rs := testSpec(t, "echo run; exit 3", "on-failure")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, rs, &hostDriver{}, SupervisorOptions{Backoff: fastBackoff()}) }()
		r := waitRecord(t, rs.Dir, func(r *Record) bool { return r.Restarts >= 2 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r.Exits[0].Code != 3 {
			t.Errorf("exit recorded as %+v, want code 3", r.Exits[0])
		}
		log, _ := os.ReadFile(consolePath(rs.Dir))
		if strings.Count(string(log), "run\n") < 3 || !strings.Contains(string(log), "exited with code 3; restarting") {
			t.Errorf("console log:\n%s", log)
		}
	})
	t.Run("on-failure does not restart a clean exit", func(t *testing.T) {
		rs := testSpec(t, "exit 0", "on-failure")
		if err := Supervise(context.Background(), rs, &hostDriver{}, SupervisorOptions{Backoff: fastBackoff()}); err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(rs.Dir)
		if r.Status != planner.StatusStopped || r.Restarts != 0 || len(r.Exits) != 1 {
			t.Errorf("record = %+v", r)
		}
	})
	t.Run("no never restarts", func(t *testing.T) {
		rs := testSpec(t, "exit 5", "no")
		d := &hostDriver{}
		if err := Supervise(context.Background(), rs, d, SupervisorOptions{Backoff: fastBackoff()}); err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(rs.Dir)
		if r.Status != planner.StatusExited || r.Restarts != 0 || r.Exits[0].Code != 5 {
			t.Errorf("record = %+v", r)
		}
		if n := d.closes.Load(); n != 1 {
			t.Errorf("instances closed %d times, want 1", n)
		}
	})
}

func TestSuperviseStop(t *testing.T) {
	t.Run("SIGTERM honoured", func(t *testing.T) {
		rs := testSpec(t, "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done", "always")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, rs, &hostDriver{}, SupervisorOptions{}) }()
		// "up" is printed after the trap is set: stopping earlier would kill the shell
		// before it can honour SIGTERM.
		waitConsole(t, rs.Dir, "up\n")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(rs.Dir)
		if r.Status != planner.StatusStopped || r.Exits[len(r.Exits)-1].Code != 0 || r.Restarts != 0 {
			t.Errorf("record = %+v", r)
		}
	})
	t.Run("SIGKILL after stop_timeout", func(t *testing.T) {
		rs := testSpec(t, "trap '' TERM; echo up; while :; do sleep 0.05; done", "always")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, rs, &hostDriver{}, SupervisorOptions{}) }()
		waitConsole(t, rs.Dir, "up\n")
		cancel()
		<-done
		r, _ := ReadRecord(rs.Dir)
		if last := r.Exits[len(r.Exits)-1]; last.Signal != "SIGKILL" {
			t.Errorf("last exit = %+v, want killed by SIGKILL", last)
		}
		log, _ := os.ReadFile(consolePath(rs.Dir))
		if !strings.Contains(string(log), "killing it") {
			t.Errorf("console log:\n%s", log)
		}
	})
}

func TestSuperviseLogProbe(t *testing.T) {
	rs := testSpec(t, "echo booting; sleep 0.2; echo 'ready to serve'; sleep 30", "no")
	rs.Ready = &spec.Ready{Log: "ready to serve", Timeout: 10 * time.Second, Interval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, rs, &hostDriver{}, SupervisorOptions{}) }()
	r := waitRecord(t, rs.Dir, func(r *Record) bool { return r.Payload != 0 })
	if r.Status != planner.StatusStarting && r.Status != planner.StatusReady {
		t.Fatalf("status %q before the probe passed", r.Status)
	}
	waitRecord(t, rs.Dir, func(r *Record) bool { return r.Status == planner.StatusReady })
	cancel()
	<-done
}

// TestSuperviseUnreadyThenReady is a probe that fails within its timeout: the sandbox is
// unready, with the probe's reason, and becomes ready when the guest finally listens.
func TestSuperviseUnreadyThenReady(t *testing.T) {
	port := freePort(t)
	rs := testSpec(t, fmt.Sprintf("sleep 1.5; exec %s -test.run=^$ -listen=127.0.0.1:%d", os.Args[0], port), "no")
	rs.Process.Env = append(rs.Process.Env, "SBX_TEST_LISTEN=1")
	rs.Ready = &spec.Ready{HTTP: &spec.HTTPProbe{Port: port, Path: "/health"}, Timeout: 300 * time.Millisecond, Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, rs, &hostDriver{}, SupervisorOptions{}) }()
	r := waitRecord(t, rs.Dir, func(r *Record) bool { return r.Status == planner.StatusUnready })
	if !strings.Contains(r.Error, "not ready after 300ms") || !strings.Contains(r.Error, "connection refused") {
		t.Errorf("unready reason = %q", r.Error)
	}
	waitRecord(t, rs.Dir, func(r *Record) bool { return r.Status == planner.StatusReady && r.Error == "" })
	log, _ := os.ReadFile(consolePath(rs.Dir))
	if !strings.Contains(string(log), "unready: http guest port") || !strings.Contains(string(log), "ready after all") {
		t.Errorf("console log:\n%s", log)
	}
	cancel()
	<-done
}

func TestSuperviseStartFailure(t *testing.T) {
	rs := testSpec(t, "", "always")
	rs.Process.Argv = []string{"/nonexistent/binary"}
	err := Supervise(context.Background(), rs, &hostDriver{}, SupervisorOptions{})
	if err == nil {
		t.Fatal("no error for a payload that cannot start")
	}
	r, _ := ReadRecord(rs.Dir)
	if r.Status != planner.StatusFailed || r.Error == "" {
		t.Errorf("record = %+v", r)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
