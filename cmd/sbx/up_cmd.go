package main

import (
	"context"
	"fmt"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime"
)

type upCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Bring up only these sandboxes (and what they depend on)."`
	DryRun   bool     `help:"Print the plan and stop: nothing is pulled, started or written."`
	Parallel int      `help:"How many sandboxes to start at once." default:"4"`
	NoDeps   bool     `help:"Leave the dependencies of the named sandboxes out."`
}

func (c *upCmd) Run(a *app) error {
	if c.DryRun {
		cfg, st, err := a.loadWithState()
		if err != nil {
			return err
		}
		p, err := a.computePlan(cfg, st, c.Targets, c.NoDeps)
		if err != nil {
			return err
		}
		return p.Render(a.stdout, a.color)
	}
	ctx, cancel := signalContext()
	defer cancel()
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	// Lock first, then read and plan: the plan is then computed from the state it is applied
	// to, and a concurrent sbx up waits here rather than failing on a stale plan.
	l, err := a.lock(ctx, dir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	st, err := l.Read()
	if err != nil {
		return err
	}
	cfg, err := a.load(lang.WithStickyIPs(st.AllocatedIPs()))
	if err != nil {
		return err
	}
	p, err := a.computePlan(cfg, st, c.Targets, c.NoDeps)
	if err != nil {
		return err
	}
	if err := p.Render(a.stdout, a.color); err != nil {
		return err
	}
	if p.Err() != nil {
		a.printDiagnostics(cfg, p.Diagnostics())
		return exitError{1}
	}
	if !p.HasChanges() {
		return nil
	}
	e, err := a.engine(cfg, l, c.Parallel)
	if err != nil {
		return err
	}
	if err := a.preflight(ctx, e.Driver); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	res, err := e.Apply(ctx, cfg, p)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	if err := a.printStatus(dir, cfg); err != nil {
		return err
	}
	return a.printResult(res)
}

// preflight checks that the driver can run on this machine at all, before anything starts.
func (a *app) preflight(ctx context.Context, driver string) error {
	exe, err := executable()
	if err != nil {
		return err
	}
	d, err := runtime.NewDriver(driver, exe, a.log)
	if err != nil {
		return err
	}
	if err := d.Preflight(ctx, nil); err != nil {
		if driver == "krun" {
			return fmt.Errorf("%w\n(on a host without KVM or libkrun, run with --driver ns, SBX_DRIVER=ns or project { driver = \"ns\" })", err)
		}
		return err
	}
	return nil
}
