package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
	"github.com/sbx-dev/sbx/runtime/state"
)

type planCmd struct {
	Targets          []string `arg:"" optional:"" name:"sandbox" help:"Plan only these sandboxes (and what they depend on)."`
	NoDeps           bool     `help:"Leave the dependencies of the named sandboxes out."`
	JSON             bool     `help:"Print the plan as JSON (schema: planner/SCHEMA.md, format_version 1)."`
	DetailedExitcode bool     `help:"Exit 0 when there are no changes, 2 when there are, 1 on error."`
}

func (c *planCmd) Run(a *app) error {
	cfg, st, err := a.loadWithState()
	if err != nil {
		return err
	}
	p, err := a.computePlan(cfg, st, c.Targets, c.NoDeps)
	if err != nil {
		return err
	}
	if c.JSON {
		if err := p.WriteJSON(a.stdout); err != nil {
			return err
		}
	} else if err := p.Render(a.stdout, a.color); err != nil {
		return err
	}
	if p.Err() != nil {
		return exitError{1} // the rendered plan says why
	}
	if c.DetailedExitcode {
		if code := p.ExitCode(); code != 0 {
			return exitError{code}
		}
	}
	return nil
}

// loadWithState reads the project's state (without locking or creating anything) and then the
// Sandboxfile, keeping the IPs allocated in earlier applies.
func (a *app) loadWithState() (*lang.Config, *planner.State, error) {
	path, err := a.sandboxfile()
	if err != nil {
		return nil, nil, err
	}
	st, err := state.New(filepath.Dir(path)).Read()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := a.load(lang.WithStickyIPs(st.AllocatedIPs()))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// computePlan plans cfg against st with what can be observed on this machine: liveness of
// the recorded supervisors, bound ports and mount sources.
func (a *app) computePlan(cfg *lang.Config, st *planner.State, targets []string, noDeps bool) (*planner.Plan, error) {
	p, err := planner.Compute(cfg, st,
		planner.WithDigests(a.knownDigests(cfg)),
		planner.WithTargets(targets...),
		planner.WithNoDeps(noDeps),
		planner.WithDriver(a.driverName(cfg)),
		planner.WithObserved(runtime.NewProject(cfg.Project.Name, cfg.Dir).Observe(st)),
		planner.WithMachine(state.Machine{}),
	)
	var unknown *planner.UnknownSandboxError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("%w (sandboxes are named by their block label: sandbox \"NAME\")", err)
	}
	return p, err
}

// knownDigests is the manifest digest of every image of cfg as this machine knows it (see
// runtime.StoreImages.Digests), so that a new digest replaces the sandboxes that use it. A
// machine without an image store knows none.
func (a *app) knownDigests(cfg *lang.Config) map[string]string {
	root, err := image.DefaultRoot(os.Getenv)
	if err != nil {
		return nil
	}
	if _, err := os.Stat(root); err != nil {
		return nil
	}
	store, err := a.imageStore()
	if err != nil {
		a.log.Warn("image digests unknown", "err", err)
		return nil
	}
	var refs []string
	for _, sb := range cfg.Sandboxes {
		refs = append(refs, sb.Image)
	}
	ctx, cancel := signalContext()
	defer cancel()
	return runtime.StoreImages{Store: store}.Digests(ctx, refs)
}
