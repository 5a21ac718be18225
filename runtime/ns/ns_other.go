//go:build !linux

package ns

import (
	"context"
	"errors"
	"io"
	"os"
)

// errNotLinux is what every entry point says off Linux.
func errNotLinux() error {
	return errors.New("the ns driver needs Linux: use the krun driver on this system")
}

// Process is a started sandbox. Off Linux there never is one.
type Process struct {
	// Warnings are problems that did not stop the sandbox.
	Warnings []string
}

// Start fails off Linux.
func Start(ctx context.Context, argv []string, cfg Config, stdout, stderr io.Writer) (*Process, error) {
	return nil, errNotLinux()
}

// Pid is always 0 off Linux.
func (p *Process) Pid() int { return 0 }

// Cgroups is always empty off Linux.
func (p *Process) Cgroups() []string { return nil }

// Signal fails off Linux.
func (p *Process) Signal(sig os.Signal) error { return errNotLinux() }

// Wait fails off Linux.
func (p *Process) Wait() (ExitStatus, error) { return ExitStatus{}, errNotLinux() }

// RunChild fails off Linux.
func RunChild(stdin io.Reader, report *os.File) error { return errNotLinux() }

// Cleanup has nothing to do off Linux.
func Cleanup(cfg Config) error { return nil }

// Preflight reports that the ns driver needs Linux.
func Preflight() []Problem {
	return []Problem{{Check: "platform", Detail: errNotLinux().Error(), Fix: "use the krun driver", Fatal: true}}
}
