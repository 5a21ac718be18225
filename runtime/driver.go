package runtime

import (
	"context"
	"io"
	"net"
	"os"
	"time"

	"github.com/sbx-dev/sbx/runtime/spec"
)

// Driver runs the payload of one sandbox: a libkrun microVM (krun) or a set of Linux
// namespaces (ns). The supervisor drives it; nothing above the supervisor knows which one.
//
// The contract, checked for every driver by the conformance suite in runtime/drivertest:
//
//  1. CheckHost says whether this machine can run the driver at all (privileges, kernel
//     features, libkrun and its capabilities). It has no side effects.
//  2. Validate says whether the driver can run spec on this machine (a libkrun capability a
//     scope needs, a mount source). It has no side effects and is called before an old run
//     of the sandbox is stopped, so a spec that cannot run leaves the old run running.
//  3. Start starts the payload and returns once it runs; a setup failure is Start's error,
//     never an exit, and leaves nothing behind. ctx bounds the start only. The Instance owns
//     everything Start made on the host: processes, port proxies, the DNS forwarder,
//     cgroups, links, firewall rules, mounts.
//  4. Instance.Close releases all of it, stopping the payload at once (SIGKILL) if it still
//     runs; afterwards nothing Start made remains. Close is idempotent.
//  5. Cleanup is crash recovery only: it removes whatever a Start of spec left on the host
//     when its Instance was never closed (the supervisor was killed with -9). It works from
//     a new Driver in another process and is idempotent.
type Driver interface {
	// Name is one of lang.DriverNames().
	Name() string
	CheckHost(ctx context.Context) error
	Validate(ctx context.Context, s *spec.RunSpec) error
	Start(ctx context.Context, s *spec.RunSpec, console io.Writer) (Instance, error)
	Cleanup(ctx context.Context, s *spec.RunSpec) error
}

// Instance is one running payload and what it holds on the host.
type Instance interface {
	// Pid is the host pid of the payload's top process (the namespace init, the VMM).
	Pid() int
	// Signal asks the payload to stop (SIGTERM) or ends it (SIGKILL); after the payload
	// ended it returns os.ErrProcessDone.
	Signal(sig os.Signal) error
	// Wait blocks until the payload ends and says how, or returns ctx's error when ctx ends
	// first (the payload keeps running). It may be called more than once.
	Wait(ctx context.Context) (Exit, error)
	// DialGuest connects to a TCP port of the sandbox itself, never through a published
	// port's proxy, which accepts before the guest listens: readiness probes use it.
	DialGuest(ctx context.Context, port int) (net.Conn, error)
	// Close releases everything Start made (see Driver).
	Close(ctx context.Context) error
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
