package main

import (
	"context"

	"github.com/sbx-dev/sbx/runtime"
)

type stopCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Stop only these sandboxes (default: all of this project)."`
	Parallel int      `help:"How many sandboxes to stop at once." default:"4"`
}

// Run stops sandboxes and keeps them: their writable layers, logs and records stay, and
// 'sbx start' or 'sbx up' starts them again. 'sbx down' is what removes them.
func (c *stopCmd) Run(a *app) error {
	return a.onProject(func(ctx context.Context, e *runtime.Engine) (*runtime.Result, error) {
		e.Parallel = c.Parallel
		return e.Stop(ctx, c.Targets)
	})
}
