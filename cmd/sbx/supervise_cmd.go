package main

import (
	"fmt"
	"os"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/state"
)

// superviseCmd is the detached supervisor of one sandbox, started by sbx up.
type superviseCmd struct {
	Dir string `arg:"" help:"The sandbox directory (.sbx/sandboxes/NAME)."`
}

func (c *superviseCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	spec, err := runtime.ReadRunSpec(c.Dir)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	exe, err := executable()
	if err != nil {
		return err
	}
	d, err := runtime.NewDriver(spec.Driver, exe, a.log)
	if err != nil {
		return err
	}
	start, _ := state.ProcessStartTime(os.Getpid())
	return runtime.Supervise(ctx, spec, d, runtime.SupervisorOptions{Logger: a.log, StartTime: start})
}

func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the sbx binary: %w", err)
	}
	return exe, nil
}
