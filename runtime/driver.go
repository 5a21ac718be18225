package runtime

import (
	"context"
	"io"
	"net"
	"os"
	"time"
)

// Driver runs the payload of one sandbox: a libkrun microVM (krun) or a set of Linux
// namespaces (ns). The supervisor drives it; nothing above the supervisor knows which one.
type Driver interface {
	// Name is "krun" or "ns".
	Name() string
	// Preflight explains, with the fix, why this machine cannot run spec, or returns nil.
	Preflight(ctx context.Context, spec *RunSpec) error
	// Start starts the payload with its console going to console, and returns once the
	// payload is configured (a configuration error is returned here, not as an exit).
	Start(ctx context.Context, spec *RunSpec, console io.Writer) (Instance, error)
	// Cleanup removes whatever Start created outside the payload's own process (cgroups,
	// links, rules). It is idempotent and also runs after the supervisor was killed.
	Cleanup(ctx context.Context, spec *RunSpec) error
}

// Instance is one running payload.
type Instance interface {
	Pid() int
	Signal(sig os.Signal) error
	// Wait blocks until the payload exits.
	Wait() Exit
}

// Exit is how a payload ended.
type Exit struct {
	Code   int       `json:"code"`             // exit code; -1 when killed by a signal
	Signal string    `json:"signal,omitempty"` // signal name when killed by one
	At     time.Time `json:"at"`
	Err    string    `json:"error,omitempty"` // the payload could not be waited for
}

// Failed reports whether the exit counts as a failure for the on-failure policy.
func (e Exit) Failed() bool { return e.Code != 0 || e.Signal != "" || e.Err != "" }

// GuestDialer is implemented by drivers that can connect to a guest port from the host
// directly, not through the published port: readiness probes use it.
type GuestDialer interface {
	DialGuest(ctx context.Context, spec *RunSpec, port int) (net.Conn, error)
}
