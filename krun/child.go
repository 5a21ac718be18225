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
	// Facts are the typed errors behind Message, rebuilt by the parent.
	Facts []fact `json:"facts,omitempty"`
}

// fact is a [*MissingError] or [*FeatureError] on the wire.
type fact struct {
	Func    string   `json:"func,omitempty"`
	Since   string   `json:"since,omitempty"`
	Feature *Feature `json:"feature,omitempty"`
	Unknown bool     `json:"unknown,omitempty"`
	Path    string   `json:"path"`
}

func factsOf(err error) []fact {
	var out []fact
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *MissingError:
			out = append(out, fact{Func: e.Func, Since: e.Since, Path: e.Path})
			return
		case *FeatureError:
			f := e.Feature
			out = append(out, fact{Feature: &f, Unknown: e.Unknown, Path: e.Path})
			return
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
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
	facts    []fact
}

// Error describes the child's report.
func (e *ConfigError) Error() string {
	return "vmm child could not configure the VM: " + e.Message
}

// Unwrap returns the underlying libkrun error, the typed facts
// ([*MissingError], [*FeatureError]) and the matching sentinel.
func (e *ConfigError) Unwrap() []error {
	var errs []error
	if e.Func != "" && e.Errno != 0 {
		errs = append(errs, &Error{Func: e.Func, Errno: e.Errno})
	}
	for _, f := range e.facts {
		if f.Feature != nil {
			errs = append(errs, &FeatureError{Feature: *f.Feature, Path: f.Path, Unknown: f.Unknown})
		} else {
			errs = append(errs, &MissingError{Func: f.Func, Since: f.Since, Path: f.Path})
		}
	}
	switch e.kind {
	case kindMissing:
		errs = append(errs, ErrMissing)
	case kindInvalid:
		errs = append(errs, ErrInvalidArgument)
	case kindUnsupported:
		errs = append(errs, ErrUnsupported)
	}
	return errs
}

func reportFor(err error) report {
	r := report{Status: statusError, Message: err.Error(), Facts: factsOf(err)}
	var ke *Error
	var le *LoadError
	switch {
	case errors.As(err, &ke):
		r.Func, r.Errno = ke.Func, int(ke.Errno)
	case errors.Is(err, ErrUnsupported) && errors.Is(err, ErrMissing):
		// Both kinds: the facts carry the detail.
		r.Kind = kindUnsupported
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := lib.Check(&cfg); err != nil {
		return nil, err
	}
	if cfg.Overlay != nil && !lib.libkrunAssemblesOverlay(&cfg) {
		if err := mountOverlay(cfg.Overlay); err != nil {
			return nil, err
		}
	}
	return lib.configureChecked(&cfg)
}
