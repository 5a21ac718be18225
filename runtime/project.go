package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
)

// Project is one project's directories: the Sandboxfile's directory and its .sbx/.
type Project struct {
	Name  string
	Dir   string // the Sandboxfile's directory
	Store *state.Store
}

// NewProject returns the project whose Sandboxfile lies in dir.
func NewProject(name, dir string) *Project {
	return &Project{Name: name, Dir: dir, Store: state.New(dir)}
}

// SandboxDir is .sbx/sandboxes/<name>.
func (p *Project) SandboxDir(name string) string {
	return filepath.Join(p.Store.Dir(), "sandboxes", name)
}

// ID identifies the project on this machine (see ProjectID); every host-side name derives
// from it.
func (p *Project) ID() string {
	name := p.Name
	if name == "" {
		name = "project"
	}
	return ProjectID(name, p.Dir)
}

// ConsoleLog is the live console log of a sandbox.
func (p *Project) ConsoleLog(name string) string { return consolePath(p.SandboxDir(name)) }

// SupervisorCommand is the hidden sbx command that runs a supervisor: `sbx __supervise DIR`.
const SupervisorCommand = "__supervise"

// spawnSupervisor starts `exe __supervise dir` detached: a new session, no terminal, output to
// dir/supervisor.log, so it outlives the sbx that started it. It returns the supervisor's pid
// and start time.
func spawnSupervisor(exe, dir string) (int, uint64, error) {
	logf, err := state.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("open the supervisor log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, 0, fmt.Errorf("open /dev/null: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(exe, SupervisorCommand, dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start supervisor: %w", err)
	}
	pid := cmd.Process.Pid
	start, err := state.ProcessStartTime(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, 0, fmt.Errorf("start supervisor: %w", err)
	}
	// Reap it if it ends while this sbx still runs; otherwise init inherits it.
	go func() { _ = cmd.Wait() }()
	return pid, start, nil
}

// errSupervisorGone means the supervisor died before reporting.
var errSupervisorGone = errors.New("the supervisor exited")

// waitSupervisor waits until the supervisor of dir says its sandbox is ready (running, for a
// sandbox without a probe), or that it is not: unready (its probe failed; the reason is the
// probe's), failed to start, or ended. timeout only bounds a supervisor that says nothing.
func waitSupervisor(ctx context.Context, dir string, pid int, start uint64, generation int, ready *spec.Ready) error {
	timeout := reportTimeout(ready)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, _ := ReadRecord(dir)
		if rec != nil && rec.Pid == pid && rec.Generation == generation {
			if done, err := reported(rec, dir, ready != nil); done {
				return err
			}
		}
		if !state.Alive(pid, start) {
			// One last read: it may have written its final record and exited.
			if rec, _ := ReadRecord(dir); rec != nil && rec.Pid == pid && rec.Generation == generation {
				if done, err := reported(rec, dir, ready != nil); done {
					return err
				}
			}
			return fmt.Errorf("%w (see %s and %s)", errSupervisorGone, filepath.Join(dir, "supervisor.log"), consolePath(dir))
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%w within %s (see %s)", errNoReport, timeout, filepath.Join(dir, "supervisor.log"))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// reported interprets a supervisor record: done is true once it says whether the sandbox is
// ready, with the error when it is not. A sandbox without a probe (probe false) that already
// ended successfully counts as having run.
func reported(rec *Record, dir string, probe bool) (done bool, err error) {
	switch rec.Status {
	case planner.StatusReady, planner.StatusRunning:
		return true, nil
	case planner.StatusUnready:
		return true, fmt.Errorf("%w: %s (see %s; sbx ps shows when it becomes ready)", ErrUnready, rec.Error, consolePath(dir))
	case planner.StatusFailed:
		return true, fmt.Errorf("%s (see %s)", rec.Error, consolePath(dir))
	case planner.StatusExited, planner.StatusStopped, planner.StatusRestarting:
		if n := len(rec.Exits); n > 0 && !probe && !rec.Exits[n-1].Failed() {
			return true, nil // a one-shot job without a probe that succeeded: it ran
		}
		if len(rec.Exits) > 0 {
			return true, fmt.Errorf("%s before it was ready (see %s)", describeExit(rec.Exits[len(rec.Exits)-1]), consolePath(dir))
		}
	}
	return false, nil
}

// ErrUnready is wrapped by the error of a sandbox whose ready probe failed: it runs, but is
// not ready, and its dependents were not started.
var ErrUnready = errors.New("not ready")

// stopSupervisor stops the supervisor pid (if it is still the process started at start):
// SIGTERM, which makes it stop its payload within stop_timeout, then SIGKILL if it has not
// exited after grace. It returns once the process is gone.
func stopSupervisor(ctx context.Context, pid int, start uint64, grace time.Duration) error {
	if !state.Alive(pid, start) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop supervisor %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for state.Alive(pid, start) {
		if time.Now().After(deadline) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill supervisor %d: %w", pid, err)
			}
			deadline = time.Now().Add(grace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Observe returns the status of every sandbox of st as seen on this machine: the liveness of
// its supervisor (pid and start time) refined by the supervisor's own record, which says
// whether a live sandbox is starting, ready or unready, and how a gone one ended (stopped
// cleanly, exited with a failure, failed to start, or crashed with its supervisor).
func (p *Project) Observe(st *planner.State) planner.Observed {
	obs := state.Observe(st)
	for name, status := range obs {
		rec := st.Record(name)
		sup, _ := ReadRecord(p.SandboxDir(name))
		if rec == nil || sup == nil || sup.Pid != rec.Pid {
			continue
		}
		switch status {
		case planner.StatusRunning:
			obs[name] = sup.Status
		case planner.StatusCrashed:
			obs[name] = endedStatus(sup)
		}
	}
	return obs
}

// endedStatus is the status of a sandbox whose supervisor is gone, from its last record.
func endedStatus(sup *Record) planner.Status {
	switch sup.Status {
	case planner.StatusStopped, planner.StatusFailed:
		return sup.Status
	case planner.StatusExited:
		if n := len(sup.Exits); n > 0 && !sup.Exits[n-1].Failed() {
			return planner.StatusStopped
		}
		return planner.StatusExited
	}
	return planner.StatusCrashed
}
