package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/planner"
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

// ConsoleLog is the live console log of a sandbox.
func (p *Project) ConsoleLog(name string) string { return consolePath(p.SandboxDir(name)) }

// runSpecPath is where the supervisor finds its spec.
func runSpecPath(dir string) string { return filepath.Join(dir, "run.json") }

// WriteRunSpec stores spec in its sandbox directory for the supervisor.
func WriteRunSpec(spec *RunSpec) error {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return err
	}
	return state.WriteFileAtomic(runSpecPath(spec.Dir), append(b, '\n'), 0o644)
}

// ReadRunSpec reads the spec a supervisor was started with.
func ReadRunSpec(dir string) (*RunSpec, error) {
	b, err := os.ReadFile(runSpecPath(dir))
	if err != nil {
		return nil, err
	}
	var spec RunSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("read %s: %w", runSpecPath(dir), err)
	}
	return &spec, nil
}

// SupervisorCommand is the hidden sbx command that runs a supervisor: `sbx __supervise DIR`.
const SupervisorCommand = "__supervise"

// spawnSupervisor starts `exe __supervise dir` detached: a new session, no terminal, output to
// dir/supervisor.log, so it outlives the sbx that started it. It returns the supervisor's pid
// and start time.
func spawnSupervisor(exe, dir string) (int, uint64, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, 0, err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, 0, err
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

// waitSupervisor waits until the supervisor of dir reports the payload ready, or fails. A
// payload that exits before it was ready is a failure, with the console log's path.
func waitSupervisor(ctx context.Context, dir string, pid int, start uint64, generation int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, _ := ReadRecord(dir)
		if rec != nil && rec.Pid == pid && rec.Generation == generation {
			switch rec.Status {
			case StatusReady:
				return nil
			case StatusFailed:
				return fmt.Errorf("%s (see %s)", rec.Error, consolePath(dir))
			case StatusExited, StatusRestarting:
				if len(rec.Exits) > 0 {
					return fmt.Errorf("%s before it was ready (see %s)", describeExit(rec.Exits[len(rec.Exits)-1]), consolePath(dir))
				}
			}
		}
		if !state.Alive(pid, start) {
			// One last read: it may have written its final record and exited.
			if rec, _ := ReadRecord(dir); rec != nil && rec.Pid == pid && rec.Status == StatusReady {
				return nil
			}
			return fmt.Errorf("%w (see %s and %s)", errSupervisorGone, filepath.Join(dir, "supervisor.log"), consolePath(dir))
		}
		select {
		case <-ctx.Done():
			rec, _ := ReadRecord(dir)
			if rec != nil && rec.Error != "" {
				return fmt.Errorf("not ready after %s: %s (see %s)", timeout, rec.Error, consolePath(dir))
			}
			return fmt.Errorf("not ready after %s (see %s)", timeout, consolePath(dir))
		case <-tick.C:
		}
	}
}

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

// Observe returns the status of every sandbox of st as seen on this machine: its supervisor's
// liveness (pid and start time), refined by the supervisor's own record, so that a payload
// that ended cleanly under restart = "no" is stopped rather than crashed.
func (p *Project) Observe(st *planner.State) planner.Observed {
	obs := state.Observe(st)
	for name, status := range obs {
		if status != planner.StatusCrashed {
			continue
		}
		rec := st.Record(name)
		sup, _ := ReadRecord(p.SandboxDir(name))
		if rec == nil || sup == nil || sup.Pid != rec.Pid {
			continue
		}
		if (sup.Status == StatusExited || sup.Status == StatusStopped) && len(sup.Exits) > 0 && !sup.Exits[len(sup.Exits)-1].Failed() {
			obs[name] = planner.StatusStopped
		}
	}
	return obs
}
