package krun

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Error is a libkrun call that returned a negative errno.
type Error struct {
	// Func is the C function, e.g. "krun_set_root".
	Func string
	// Errno is the error number libkrun returned (negated back to positive).
	Errno syscall.Errno
}

// Error returns "krun_func: strerror (errno N)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (errno %d)", e.Func, e.Errno.Error(), int(e.Errno))
}

// Unwrap returns the errno, so that errors.Is(err, syscall.EEXIST) works.
func (e *Error) Unwrap() error { return e.Errno }

// ErrMissing is wrapped by every error about a function the loaded libkrun
// does not export.
var ErrMissing = errors.New("function not exported by this libkrun")

// ErrInvalidArgument is wrapped by errors about arguments rejected before any
// call into libkrun, such as strings containing a NUL byte.
var ErrInvalidArgument = errors.New("invalid argument")

// ErrUnsupported is wrapped by errors about a configuration the loaded libkrun
// cannot enforce, such as a network scope without krun_set_tsi_scope.
var ErrUnsupported = errors.New("not supported by this libkrun")

// MissingError reports that the loaded libkrun lacks a function.
type MissingError struct {
	// Func is the C function that is missing.
	Func string
	// Path is the library that was loaded.
	Path string
}

// Error names the function, the library, and where the function is found.
func (e *MissingError) Error() string {
	hint := ""
	switch e.Func {
	case fnSetOverlayfsRoot, fnSetTSIScope:
		hint = " (it is provided by microsandbox's libkrun fork, not by upstream libkrun)"
	case fnDisableImplicitVsock, fnSetUID, fnSetGID, fnGetMaxVCPUs, fnHasFeature:
		hint = " (it is provided by upstream libkrun 1.17 and later)"
	}
	return fmt.Sprintf("%s: this libkrun (%s) does not export it%s", e.Func, e.Path, hint)
}

// Unwrap returns [ErrMissing].
func (e *MissingError) Unwrap() error { return ErrMissing }

// LoadError reports that no usable libkrun could be loaded.
type LoadError struct {
	// Tried lists each candidate with the reason it was rejected.
	Tried []string
	// MissingRequired lists required functions that the library found lacks.
	MissingRequired []string
	// Path is the library that was opened when MissingRequired is set.
	Path string
}

// Error explains what was tried and what to do.
func (e *LoadError) Error() string {
	if len(e.MissingRequired) > 0 {
		return fmt.Sprintf("libkrun at %s lacks required functions %s: install a newer libkrun (see README) or run with --driver ns",
			e.Path, strings.Join(e.MissingRequired, ", "))
	}
	return fmt.Sprintf("libkrun not found (tried: %s): install libkrun (see README) or run with --driver ns",
		strings.Join(e.Tried, "; "))
}

// errno turns a libkrun return value into an error: nil for >= 0.
func errno(fn string, ret int32) error {
	if ret >= 0 {
		return nil
	}
	return &Error{Func: fn, Errno: syscall.Errno(-ret)}
}
