package krun

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Problem is one reason a VM cannot start on this host.
type Problem struct {
	// What is wrong.
	What string
	// Fix is what can be done about it on the libkrun or host side; the
	// caller adds its own alternatives.
	Fix string
	// Err is the typed fact: a [*KVMError], [*LoadError], [*MissingError] or
	// [*FeatureError].
	Err error
}

// String returns "what: fix".
func (p Problem) String() string { return p.What + ": " + p.Fix }

// PreflightError lists every [Problem] found by [Preflight].
type PreflightError struct {
	Problems []Problem
}

// Error lists every problem with its fix, one per item.
func (e *PreflightError) Error() string {
	var b strings.Builder
	b.WriteString("cannot start libkrun VMs here:")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.What)
		if p.Fix != "" {
			b.WriteString("\n    fix: ")
			b.WriteString(p.Fix)
		}
	}
	return b.String()
}

// Unwrap returns each problem's typed error, for errors.As.
func (e *PreflightError) Unwrap() []error {
	var errs []error
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// PreflightOption configures [Preflight].
type PreflightOption func(*preflightOptions) error

type preflightOptions struct {
	lib     []Option
	kvmPath string
	skipKVM bool
	configs []*VMConfig
}

// WithLibrary passes options to [Open], e.g. WithLibrary(WithPath(p)).
func WithLibrary(opts ...Option) PreflightOption {
	return func(o *preflightOptions) error {
		o.lib = append(o.lib, opts...)
		return nil
	}
}

// WithKVMDevice checks path instead of /dev/kvm (Linux).
func WithKVMDevice(path string) PreflightOption {
	return func(o *preflightOptions) error {
		if path == "" {
			return fmt.Errorf("krun.WithKVMDevice: empty path: %w", ErrInvalidArgument)
		}
		o.kvmPath = path
		return nil
	}
}

// WithoutKVMCheck skips the check of the KVM device (a testing aid: libkrun
// itself still needs KVM to boot). See [KVMCheckFromEnv].
func WithoutKVMCheck() PreflightOption {
	return func(o *preflightOptions) error {
		o.skipKVM = true
		return nil
	}
}

// WithConfig also checks that the loaded libkrun can carry out cfg
// ([Lib.Check]).
func WithConfig(cfg *VMConfig) PreflightOption {
	return func(o *preflightOptions) error {
		if cfg == nil {
			return fmt.Errorf("krun.WithConfig: nil config: %w", ErrInvalidArgument)
		}
		o.configs = append(o.configs, cfg)
		return nil
	}
}

// EnvKVMCheck is the environment variable that, set to "skip", skips only
// the KVM device check of [Preflight]; see [KVMCheckFromEnv].
const EnvKVMCheck = "SBX_KVM_CHECK"

// KVMCheckFromEnv reports whether $SBX_KVM_CHECK asks to skip the KVM device
// check ("skip"). It is the only place the package reads that variable; pass
// [WithoutKVMCheck] when it returns true.
func KVMCheckFromEnv() (skip bool) {
	return os.Getenv(EnvKVMCheck) == "skip"
}

// Preflight explains every reason libkrun VMs cannot start on this host:
// the hypervisor device missing or not accessible, libkrun not found (listing
// where it looked) or too old, and what the configs given with [WithConfig]
// need that this libkrun lacks. It returns nil or a [*PreflightError].
func Preflight(opts ...PreflightOption) error {
	o := preflightOptions{kvmPath: "/dev/kvm"}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return err
		}
	}
	var probs []Problem
	if !o.skipKVM {
		probs = append(probs, hypervisorProblems(o.kvmPath)...)
	}

	lib, err := Open(o.lib...)
	if err != nil {
		var le *LoadError
		switch {
		case errors.As(err, &le) && len(le.MissingRequired) > 0:
			probs = append(probs, Problem{
				What: fmt.Sprintf("libkrun at %s is too old or incomplete: it lacks %s", le.Path, strings.Join(le.MissingRequired, ", ")),
				Fix:  "install a current libkrun (see README)",
				Err:  err,
			})
		case errors.As(err, &le):
			probs = append(probs, Problem{
				What: "libkrun not found; looked for:\n      " + strings.Join(le.Tried, "\n      "),
				Fix:  "install libkrun (see README) or point SBX_LIBKRUN at libkrun.so.1",
				Err:  err,
			})
		default:
			probs = append(probs, Problem{What: err.Error(), Fix: "check the libkrun path given", Err: err})
		}
	} else {
		for _, cfg := range o.configs {
			probs = append(probs, capabilityProblems(lib, cfg)...)
		}
		_ = lib.Close()
	}
	if len(probs) == 0 {
		return nil
	}
	return &PreflightError{Problems: probs}
}

func capabilityProblems(lib *Lib, cfg *VMConfig) []Problem {
	err := lib.Check(cfg)
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var probs []Problem
	for _, e := range errs {
		p := Problem{What: e.Error(), Err: e}
		var me *MissingError
		var fe *FeatureError
		switch {
		case errors.As(e, &fe) && fe.Unknown:
			p.Fix = "install libkrun 1.17 or later"
		case errors.As(e, &fe):
			p.Fix = "install a libkrun built with " + fe.Feature.BuildOption()
		case errors.As(e, &me) && strings.HasPrefix(me.Since, "libkrun"):
			p.Fix = "install " + me.Since
		case errors.As(e, &me) && me.Since != "":
			p.Fix = "install microsandbox's libkrun fork (see README)"
		}
		probs = append(probs, p)
	}
	return probs
}
