package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
)

type upCmd struct {
	Targets    []string      `arg:"" optional:"" name:"sandbox" help:"Bring up only these sandboxes (and what they depend on)."`
	DryRun     bool          `help:"Print the plan and stop: nothing is pulled, started or written."`
	Parallel   int           `help:"How many sandboxes to start at once." default:"4"`
	NoDeps     bool          `help:"Leave the dependencies of the named sandboxes out."`
	Watch      bool          `help:"After applying, keep watching the Sandboxfile, its variable files and each sandbox's watch paths, and apply every change."`
	Debounce   time.Duration `help:"With --watch: how long changes must settle before they are applied." default:"300ms"`
	DownOnExit bool          `help:"With --watch: stop the sandboxes when watching ends (Ctrl-C)."`
	Pull       bool          `help:"Pull every image first, so that a registry tag that moved (or a rebuilt local image) replaces the sandboxes using it."`
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
	if c.Watch {
		return c.watch(ctx, a)
	}
	out, err := c.apply(ctx, a)
	if err != nil {
		return err
	}
	if out.plan.HasChanges() {
		fmt.Fprintln(a.stdout)
		if err := a.printStatus(out.cfg.Dir, out.cfg); err != nil {
			return err
		}
	}
	return a.printResult(out.res)
}

// upOutcome is what one apply did.
type upOutcome struct {
	cfg  *lang.Config
	plan *planner.Plan
	res  *runtime.Result
}

// apply reads the Sandboxfile, plans against the state and applies the plan, holding the
// state lock throughout: the plan is computed from the very state it is applied to, and a
// concurrent sbx up waits here rather than failing on a stale plan.
func (c *upCmd) apply(ctx context.Context, a *app) (*upOutcome, error) {
	dir, err := a.projectDir()
	if err != nil {
		return nil, err
	}
	l, err := a.lock(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	st, err := l.Read()
	if err != nil {
		return nil, err
	}
	cfg, err := a.load(lang.WithStickyIPs(st.AllocatedIPs()))
	if err != nil {
		return nil, err
	}
	if c.Pull {
		if err := a.pullAll(ctx, imageRefs(cfg, c.Targets), c.Parallel, false); err != nil {
			return nil, err
		}
	}
	p, err := a.computePlan(cfg, st, c.Targets, c.NoDeps)
	if err != nil {
		return nil, err
	}
	if err := p.Render(a.stdout, a.color); err != nil {
		return nil, err
	}
	out := &upOutcome{cfg: cfg, plan: p, res: &runtime.Result{Errors: map[string]error{}}}
	if p.Err() != nil {
		return nil, exitError{1} // the rendered plan says why
	}
	e, err := a.engine(cfg, l, c.Parallel)
	if err != nil {
		return nil, err
	}
	if !p.HasChanges() {
		out.res.Errors = e.AwaitReady(ctx, p.Selected)
		return out, nil
	}
	if err := a.preflight(ctx, e.Driver); err != nil {
		return nil, err
	}
	fmt.Fprintln(a.stdout)
	res, err := e.Apply(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	out.res = res
	var waiting []string
	for _, name := range p.Selected {
		if _, failed := res.Errors[name]; !failed {
			waiting = append(waiting, name)
		}
	}
	for name, err := range e.AwaitReady(ctx, waiting) {
		res.Errors[name] = err
	}
	return out, nil
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
	return d.CheckHost(ctx)
}
