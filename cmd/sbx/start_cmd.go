package main

import (
	"context"

	"github.com/sbx-dev/sbx/runtime"
)

type startCmd struct {
	Targets []string `arg:"" optional:"" name:"sandbox" help:"Start only these sandboxes (default: every stopped one of this project)."`
}

// Run starts stopped sandboxes as they last ran, with their writable layers, dependencies
// first. It does not read the Sandboxfile: 'sbx up' applies changes.
func (c *startCmd) Run(a *app) error {
	return a.onProject(func(ctx context.Context, e *runtime.Engine) (*runtime.Result, error) {
		return e.Start(ctx, c.Targets)
	})
}
