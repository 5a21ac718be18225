package main

import (
	"context"

	"github.com/sbx-dev/sbx/runtime"
)

type restartCmd struct {
	Targets []string `arg:"" required:"" name:"sandbox" help:"Sandboxes to restart, keeping their writable layer."`
}

func (c *restartCmd) Run(a *app) error {
	return a.onProject(func(ctx context.Context, e *runtime.Engine) (*runtime.Result, error) {
		return e.Restart(ctx, c.Targets)
	})
}
