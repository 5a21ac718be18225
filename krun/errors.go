package krun

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// The errors of this package state facts about libkrun and the host: a
// function a build lacks, a build feature it was compiled without, a KVM
// device that cannot be used, a libkrun call that failed. What the user
// should do about them beyond libkrun itself (another sbx driver, say) is
// the caller's to write.

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
// cannot carry out: a build feature it lacks ([*FeatureError]), a network
// scope it cannot enforce.
var ErrUnsupported = errors.New("not supported by this libkrun")

// ErrNoKVM is wrapped by [*KVMError].
var ErrNoKVM = errors.New("KVM not usable")

// since says which libkrun first exported a function, for messages about a
// build that lacks it. Functions not listed have been in every libkrun sbx
// supports.
var since = map[string]string{
	fnSetOverlayfsRoot:     "only microsandbox's libkrun fork exports it",
	fnSetTSIScope:          "only microsandbox's libkrun fork exports it",
	fnAddNetTap:            "libkrun >= 1.15",
	fnAddVsockPort2:        "libkrun >= 1.10",
	fnSetUID:               "libkrun >= 1.11",
	fnSetGID:               "libkrun >= 1.11",
	fnDisableImplicitVsock: "libkrun >= 1.17",
	fnAddVsock:             "libkrun >= 1.17",
	fnGetMaxVCPUs:          "libkrun >= 1.17",
	fnHasFeature:           "libkrun >= 1.17",
	fnAddVirtiofs2:         "libkrun >= 1.9",
}

// Since returns which libkrun introduced the C function fn, e.g.
// "libkrun >= 1.15", or "" if it is in every supported libkrun.
func Since(fn string) string { return since[fn] }

// MissingError reports that the loaded libkrun lacks a function.
type MissingError struct {
	// Func is the C function that is missing.
	Func string
	// Path is the library that was loaded.
	Path string
	// Since is which libkrun introduced it ("libkrun >= 1.15"), or "".
	Since string
}

// Error names the function, the library, and which libkrun has it.
func (e *MissingError) Error() string {
	s := fmt.Sprintf("%s: this libkrun (%s) does not export it", e.Func, e.Path)
	if e.Since != "" {
		s += " (" + e.Since + ")"
	}
	return s
}

// Unwrap returns [ErrMissing].
func (e *MissingError) Unwrap() error { return ErrMissing }

// FeatureError reports that the loaded libkrun was built without a feature
// (krun_has_feature said 0), or cannot say (no krun_has_feature).
type FeatureError struct {
	Feature Feature
	// Path is the library that was loaded.
	Path string
	// Unknown is set when the library has no krun_has_feature to ask.
	Unknown bool
}

// Error names the feature and the build option that enables it.
func (e *FeatureError) Error() string {
	if e.Unknown {
		return fmt.Sprintf("this libkrun (%s) cannot say whether it was built with %s (it lacks %s, libkrun >= 1.17)",
			e.Path, e.Feature, fnHasFeature)
	}
	return fmt.Sprintf("this libkrun (%s) was built without %s (build option %s)", e.Path, e.Feature, e.Feature.BuildOption())
}

// Unwrap returns [ErrUnsupported].
func (e *FeatureError) Unwrap() error { return ErrUnsupported }

// KVMError reports that the KVM device cannot be used.
type KVMError struct {
	// Path is the device checked, normally /dev/kvm.
	Path string
	// Reason says what is wrong, e.g. "does not exist".
	Reason string
	// Group is the device's group when the user lacks access, else "".
	Group string
	// Err is the underlying error, if any.
	Err error
}

// Error returns "/dev/kvm <reason>".
func (e *KVMError) Error() string {
	s := e.Path + " " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns [ErrNoKVM] and the underlying error.
func (e *KVMError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNoKVM, e.Err}
	}
	return []error{ErrNoKVM}
}

// LoadError reports that no usable libkrun could be loaded.
type LoadError struct {
	// Tried lists each candidate with the reason it was rejected.
	Tried []string
	// MissingRequired lists required functions that the library found lacks.
	MissingRequired []string
	// Path is the library that was opened when MissingRequired is set.
	Path string
}

// Error says what was tried.
func (e *LoadError) Error() string {
	if len(e.MissingRequired) > 0 {
		return fmt.Sprintf("libkrun at %s is too old or incomplete: it lacks %s",
			e.Path, strings.Join(e.MissingRequired, ", "))
	}
	return fmt.Sprintf("libkrun not found (tried: %s)", strings.Join(e.Tried, "; "))
}

// errno turns a libkrun return value into an error: nil for >= 0.
func errno(fn string, ret int32) error {
	if ret >= 0 {
		return nil
	}
	return &Error{Func: fn, Errno: syscall.Errno(-ret)}
}
