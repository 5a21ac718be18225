package krun

import (
	"errors"
	"fmt"
	"strings"
)

// Needs is what a caller is about to ask of libkrun, for [Preflight].
type Needs struct {
	// Scopes are the network scopes the VMs will use.
	Scopes []Scope
	// StaticIP is set if a VM has a static IP or subnet.
	StaticIP bool
	// PortsWithScopeNone is set if a VM with scope none maps ports.
	PortsWithScopeNone bool
	// Overlay is set if a root is built from layers (krun_set_overlayfs_root).
	Overlay bool
	// UIDGID is set if the VMM must switch uid/gid (krun_setuid/krun_setgid).
	UIDGID bool
}

// Problem is one reason a VM cannot start on this host, with its fix.
type Problem struct {
	// What is wrong.
	What string
	// Fix is what the user can do about it.
	Fix string
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
		b.WriteString("\n    fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// PreflightOption configures [Preflight].
type PreflightOption func(*preflightOptions) error

type preflightOptions struct {
	lib     []Option
	kvmPath string
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

// Preflight explains, each with its fix, every reason libkrun VMs with needs
// cannot start on this host: libkrun not found (listing where it looked) or
// too old, the hypervisor device missing or not accessible, functions the
// needs require missing from this libkrun build. It returns nil or a
// [*PreflightError].
func Preflight(needs Needs, opts ...PreflightOption) error {
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
	probs = append(probs, hypervisorProblems(o.kvmPath)...)

	lib, err := Open(o.lib...)
	if err != nil {
		var le *LoadError
		switch {
		case errors.As(err, &le) && len(le.MissingRequired) > 0:
			probs = append(probs, Problem{
				What: fmt.Sprintf("libkrun at %s is too old or incomplete: it lacks %s", le.Path, strings.Join(le.MissingRequired, ", ")),
				Fix:  "install a current libkrun (see README) or run with --driver ns",
			})
		case errors.As(err, &le):
			probs = append(probs, Problem{
				What: "libkrun not found; looked for:\n      " + strings.Join(le.Tried, "\n      "),
				Fix:  "install libkrun (see README), point SBX_LIBKRUN at libkrun.so.1, or run with --driver ns",
			})
		default:
			probs = append(probs, Problem{What: err.Error(), Fix: "check the libkrun path given"})
		}
	} else {
		probs = append(probs, capabilityProblems(lib, needs)...)
		_ = lib.Close()
	}
	if len(probs) == 0 {
		return nil
	}
	return &PreflightError{Problems: probs}
}

func capabilityProblems(lib *Lib, needs Needs) []Problem {
	var probs []Problem
	lacks := func(fn, what, fix string) {
		if !lib.Has(fn) {
			probs = append(probs, Problem{
				What: fmt.Sprintf("%s needs %s, which this libkrun (%s) does not export", what, fn, lib.Path()),
				Fix:  fix,
			})
		}
	}
	const fork = "install microsandbox's libkrun fork (see README) or run with --driver ns"
	for _, s := range needs.Scopes {
		switch s {
		case ScopeGroup, ScopePublic:
			lacks(fnSetTSIScope, "network scope "+s.String(), "use scope none or any, "+fork)
		case ScopeNone:
			if !lib.Has(fnSetTSIScope) {
				lacks(fnDisableImplicitVsock, "network scope none", "install libkrun 1.17 or later, "+fork)
			}
		}
	}
	if needs.StaticIP {
		lacks(fnSetTSIScope, "a static guest IP or subnet", fork)
	}
	if needs.PortsWithScopeNone && !lib.Has(fnSetTSIScope) {
		probs = append(probs, Problem{
			What: fmt.Sprintf("ports on a sandbox with network scope none need %s (without it, scope none removes the network entirely)", fnSetTSIScope),
			Fix:  "use scope any, " + fork,
		})
	}
	if needs.Overlay {
		lacks(fnSetOverlayfsRoot, "a layered root filesystem", fork)
	}
	if needs.UIDGID {
		lacks(fnSetUID, "running the VMM as another user", "install libkrun 1.17 or later")
		lacks(fnSetGID, "running the VMM as another group", "install libkrun 1.17 or later")
	}
	return probs
}
