package runtime

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/lang"
)

// hostDriver runs the payload as a plain host process: real processes, no isolation. It lets
// the supervisor's policy be tested without root; the krun and ns drivers have their own tests.
type hostDriver struct{ cleanups int }

func (*hostDriver) Name() string                              { return "host" }
func (*hostDriver) Preflight(context.Context, *RunSpec) error { return nil }
func (d *hostDriver) Cleanup(context.Context, *RunSpec) error { d.cleanups++; return nil }
func (*hostDriver) Start(ctx context.Context, spec *RunSpec, console io.Writer) (Instance, error) {
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = spec.Env, spec.Workdir, console, console
	// Its own process group, signalled whole, as a pid namespace would be.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return hostInstance{cmd}, nil
}

type hostInstance struct{ cmd *exec.Cmd }

func (i hostInstance) Pid() int { return i.cmd.Process.Pid }
func (i hostInstance) Signal(s os.Signal) error {
	return syscall.Kill(-i.cmd.Process.Pid, s.(syscall.Signal))
}
func (i hostInstance) Wait() Exit {
	err := i.cmd.Wait()
	ex := Exit{At: time.Now(), Code: i.cmd.ProcessState.ExitCode()}
	if ws, ok := i.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ex.Signal = unix.SignalName(ws.Signal())
	} else if err != nil && !errors.As(err, new(*exec.ExitError)) {
		ex.Err = err.Error()
	}
	return ex
}

func testSpec(t *testing.T, script, restart string) *RunSpec {
	t.Helper()
	return &RunSpec{
		Dir:     t.TempDir(),
		Driver:  "host",
		Sandbox: lang.Sandbox{Name: "t", Restart: restart, StopTimeout: 200 * time.Millisecond},
		Argv:    []string{"/bin/sh", "-c", script},
		Env:     []string{defaultPath},
		Workdir: "/",
	}
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
		spec := testSpec(t, "echo run; exit 3", "on-failure")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, spec, &hostDriver{}, SupervisorOptions{Backoff: fastBackoff()}) }()
		r := waitRecord(t, spec.Dir, func(r *Record) bool { return r.Restarts >= 2 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r.Exits[0].Code != 3 {
			t.Errorf("exit recorded as %+v, want code 3", r.Exits[0])
		}
		log, _ := os.ReadFile(consolePath(spec.Dir))
		if strings.Count(string(log), "run\n") < 3 || !strings.Contains(string(log), "exited with code 3; restarting") {
			t.Errorf("console log:\n%s", log)
		}
	})
	t.Run("on-failure does not restart a clean exit", func(t *testing.T) {
		spec := testSpec(t, "exit 0", "on-failure")
		if err := Supervise(context.Background(), spec, &hostDriver{}, SupervisorOptions{Backoff: fastBackoff()}); err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(spec.Dir)
		if r.Status != StatusExited || r.Restarts != 0 || len(r.Exits) != 1 {
			t.Errorf("record = %+v", r)
		}
	})
	t.Run("no never restarts", func(t *testing.T) {
		spec := testSpec(t, "exit 5", "no")
		d := &hostDriver{}
		if err := Supervise(context.Background(), spec, d, SupervisorOptions{Backoff: fastBackoff()}); err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(spec.Dir)
		if r.Status != StatusExited || r.Restarts != 0 || r.Exits[0].Code != 5 {
			t.Errorf("record = %+v", r)
		}
		if d.cleanups != 1 {
			t.Errorf("cleanups = %d, want 1", d.cleanups)
		}
	})
}

func TestSuperviseStop(t *testing.T) {
	t.Run("SIGTERM honoured", func(t *testing.T) {
		spec := testSpec(t, "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done", "always")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, spec, &hostDriver{}, SupervisorOptions{}) }()
		waitRecord(t, spec.Dir, func(r *Record) bool { return r.Status == StatusReady })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r, _ := ReadRecord(spec.Dir)
		if r.Status != StatusStopped || r.Exits[len(r.Exits)-1].Code != 0 || r.Restarts != 0 {
			t.Errorf("record = %+v", r)
		}
	})
	t.Run("SIGKILL after stop_timeout", func(t *testing.T) {
		spec := testSpec(t, "trap '' TERM; while :; do sleep 0.05; done", "always")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Supervise(ctx, spec, &hostDriver{}, SupervisorOptions{}) }()
		waitRecord(t, spec.Dir, func(r *Record) bool { return r.Payload != 0 })
		cancel()
		<-done
		r, _ := ReadRecord(spec.Dir)
		if last := r.Exits[len(r.Exits)-1]; last.Signal != "SIGKILL" {
			t.Errorf("last exit = %+v, want killed by SIGKILL", last)
		}
		log, _ := os.ReadFile(consolePath(spec.Dir))
		if !strings.Contains(string(log), "killing it") {
			t.Errorf("console log:\n%s", log)
		}
	})
}

func TestSuperviseLogProbe(t *testing.T) {
	spec := testSpec(t, "echo booting; sleep 0.2; echo 'ready to serve'; sleep 30", "no")
	spec.Sandbox.Ready = &lang.Ready{Log: "ready to serve", Timeout: 10 * time.Second, Interval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, spec, &hostDriver{}, SupervisorOptions{}) }()
	r := waitRecord(t, spec.Dir, func(r *Record) bool { return r.Status != StatusStarting })
	if r.Status != StatusRunning && r.Status != StatusReady {
		t.Fatalf("status %q", r.Status)
	}
	waitRecord(t, spec.Dir, func(r *Record) bool { return r.Status == StatusReady })
	cancel()
	<-done
}

func TestSuperviseStartFailure(t *testing.T) {
	spec := testSpec(t, "", "always")
	spec.Argv = []string{"/nonexistent/binary"}
	err := Supervise(context.Background(), spec, &hostDriver{}, SupervisorOptions{})
	if err == nil {
		t.Fatal("no error for a payload that cannot start")
	}
	r, _ := ReadRecord(spec.Dir)
	if r.Status != StatusFailed || r.Error == "" {
		t.Errorf("record = %+v", r)
	}
}
