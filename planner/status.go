package planner

// Status is the state of a sandbox, in the one vocabulary the planner, the runtime and sbx ps
// share. The runtime's supervisor records the statuses of a running sandbox; the state file's
// Record holds what the apply engine last did (running or stopped); an Observed status is the
// one checked on the machine just before planning.
type Status string

// The statuses, in the order of a sandbox's life.
const (
	// StatusStarting: the payload is being started, or runs and its ready probe has not passed
	// yet.
	StatusStarting Status = "starting"
	// StatusRunning: the payload runs and has no ready probe; in a Record, the engine started a
	// supervisor.
	StatusRunning Status = "running"
	// StatusReady: the payload runs and its ready probe passed.
	StatusReady Status = "ready"
	// StatusUnready: the payload runs but its ready probe failed (the reason is recorded); it
	// is probed again, and becomes ready when a probe passes.
	StatusUnready Status = "unready"
	// StatusRestarting: the payload ended and waits to be started again by its policy.
	StatusRestarting Status = "restarting"
	// StatusStopping: the payload is being stopped.
	StatusStopping Status = "stopping"
	// StatusStopped: stopped on purpose (sbx stop, down of a target), or ended cleanly under
	// restart = "no".
	StatusStopped Status = "stopped"
	// StatusExited: the payload ended with a failure and its policy does not restart it.
	StatusExited Status = "exited"
	// StatusFailed: the payload could not be started at all.
	StatusFailed Status = "failed"
	// StatusCrashed: it should run but does not: its supervisor is gone (killed, or the machine
	// rebooted) or its pid was reused.
	StatusCrashed Status = "crashed"
	// StatusUnknown: this machine cannot tell; the planner treats it as running.
	StatusUnknown Status = "unknown"
)

// Live reports whether the sandbox's supervisor is at work: the sandbox runs or is on its
// way to running or stopping. The planner leaves a live sandbox alone unless its spec
// changed; any other status is started again by sbx up.
func (s Status) Live() bool {
	switch s {
	case StatusStarting, StatusRunning, StatusReady, StatusUnready, StatusRestarting, StatusStopping, StatusUnknown:
		return true
	}
	return false
}
