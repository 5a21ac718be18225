package state

import (
	"errors"

	"github.com/sbx-dev/sbx/planner"
)

// ErrNoProcess is wrapped by ProcessStartTime's error when no process has the pid.
var ErrNoProcess = errors.New("no such process")

// ProcessStartTime returns the start time of process pid, in an opaque unit that only compares
// for equality with a later call: on Linux, field 22 of /proc/<pid>/stat (clock ticks after
// boot). Together with the pid it identifies a process for good, since pids are recycled but
// a new process never has the old one's start time. A missing process is ErrNoProcess.
func ProcessStartTime(pid int) (uint64, error) {
	start, _, err := procStart(pid)
	return start, err
}

// Alive reports whether the process pid, started at start (from ProcessStartTime), is still
// running. A pid now used by another process, or a zombie, is not alive.
func Alive(pid int, start uint64) bool {
	if pid <= 0 || start == 0 {
		return false
	}
	got, zombie, err := procStart(pid)
	return err == nil && !zombie && got == start
}

// Observe checks the supervisor of each record of st and returns the statuses to plan with:
// running when the supervisor is alive (pid and start time); crashed when it should be running
// but is gone or its pid was reused; the recorded status (stopped, crashed) otherwise; unknown
// when this machine cannot tell.
func Observe(st *planner.State) planner.Observed {
	obs := planner.Observed{}
	if st == nil {
		return obs
	}
	for name, r := range st.Sandboxes {
		obs[name] = observe(r)
	}
	return obs
}

func observe(r *planner.Record) planner.Status {
	if r.Pid > 0 {
		start, zombie, err := procStart(r.Pid)
		switch {
		case err == nil && !zombie && start == r.StartTime:
			return planner.StatusRunning
		case err != nil && !errors.Is(err, ErrNoProcess):
			return planner.StatusUnknown
		}
		// Gone, a zombie, or a recycled pid.
		if r.Status == planner.StatusRunning || r.Status == "" {
			return planner.StatusCrashed
		}
	}
	switch r.Status {
	case planner.StatusStopped, planner.StatusCrashed:
		return r.Status
	case planner.StatusRunning:
		// Recorded as running without a supervisor pid: it cannot be running.
		return planner.StatusCrashed
	}
	return planner.StatusUnknown
}
