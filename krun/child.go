package krun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
)

// ReportFD is the file descriptor on which the VMM child reports to its
// parent: [Spawn] passes the pipe there, the child's main hands
// os.NewFile(ReportFD, "report") to [RunChild].
const ReportFD = 3

// report is one line the child writes on the report pipe.
type report struct {
	// Status is "configured" or "error".
	Status  string `json:"status"`
	Func    string `json:"func,omitempty"`
	Errno   int    `json:"errno,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message,omitempty"`
}

const (
	statusConfigured = "configured"
	statusError      = "error"
)

// Kinds of configuration error, so the parent can rebuild the sentinel.
const (
	kindInvalid     = "invalid_argument"
	kindMissing     = "missing"
	kindUnsupported = "unsupported"
	kindLoad        = "load"
)

// ConfigError is the VMM child's report that it could not configure the VM.
// It unwraps to the child's [*Error] (so errors.Is(err, syscall.EEXIST) and
// errors.As(err, **Error) work) or to the matching sentinel ([ErrMissing],
// [ErrInvalidArgument], [ErrUnsupported]).
type ConfigError struct {
	// Func is the failing C function, if a libkrun call failed.
	Func string
	// Errno is the errno that call returned.
	Errno syscall.Errno
	// Message is the child's description of the error.
	Message string
	// ExitCode is the child's exit status.
	ExitCode int
	kind     string
}

// Error describes the child's report.
func (e *ConfigError) Error() string {
	return "vmm child could not configure the VM: " + e.Message
}

// Unwrap returns the underlying libkrun error or sentinel.
func (e *ConfigError) Unwrap() error {
	if e.Func != "" && e.Errno != 0 {
		return &Error{Func: e.Func, Errno: e.Errno}
	}
	switch e.kind {
	case kindMissing:
		return ErrMissing
	case kindInvalid:
		return ErrInvalidArgument
	case kindUnsupported:
		return ErrUnsupported
	}
	return nil
}

func reportFor(err error) report {
	r := report{Status: statusError, Message: err.Error()}
	var ke *Error
	var le *LoadError
	switch {
	case errors.As(err, &ke):
		r.Func, r.Errno = ke.Func, int(ke.Errno)
	case errors.Is(err, ErrMissing):
		r.Kind = kindMissing
		var me *MissingError
		if errors.As(err, &me) {
			r.Func = me.Func
		}
	case errors.Is(err, ErrUnsupported):
		r.Kind = kindUnsupported
	case errors.Is(err, ErrInvalidArgument):
		r.Kind = kindInvalid
	case errors.As(err, &le):
		r.Kind = kindLoad
	}
	return r
}

func writeReport(w io.Writer, r report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// RunChild is the VMM child's side of [Spawn]. It reads one [VMConfig] as
// JSON from stdin, loads libkrun (opts), configures a context, writes
// "configured" to report and closes it, then calls krun_start_enter, which on
// success never returns: libkrun runs the VM and exits the process with the
// workload's status.
//
// A configuration error is written to report as structured JSON
// ({"status":"error","func":...,"errno":...,"message":...}) and returned; the
// caller must then exit non-zero. RunChild also returns if krun_start_enter
// fails. It must only run in a process started for this purpose.
func RunChild(ctx context.Context, stdin io.Reader, report *os.File, opts ...Option) error {
	// libkrun keeps the calling thread; keep Go from scheduling anything else on it.
	runtime.LockOSThread()
	watchParent(ctx)

	ctxID, err := configureChild(ctx, stdin, opts)
	if err != nil {
		_ = writeReport(report, reportFor(err))
		_ = report.Close()
		return err
	}
	if err := writeReport(report, reportConfigured()); err != nil {
		return fmt.Errorf("report configured: %w", err)
	}
	// Close before start: the VM must not hold the parent's pipe open.
	if err := report.Close(); err != nil {
		return fmt.Errorf("close report pipe: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ctxID.StartEnter()
}

func reportConfigured() report { return report{Status: statusConfigured} }

func configureChild(ctx context.Context, stdin io.Reader, opts []Option) (*Ctx, error) {
	var cfg VMConfig
	dec := json.NewDecoder(bufio.NewReader(stdin))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("read VM config from stdin: %v: %w", err, ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lib, err := Open(opts...)
	if err != nil {
		return nil, err
	}
	return lib.Configure(&cfg)
}
