package main

import "github.com/sbx-dev/sbx/runtime"

type restartCmd struct {
	Targets []string `arg:"" required:"" name:"sandbox" help:"Sandboxes to restart, keeping their writable layer."`
}

func (c *restartCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	l, err := a.lock(ctx, dir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	exe, err := executable()
	if err != nil {
		return err
	}
	e := &runtime.Engine{Project: runtime.NewProject("", dir), Lock: l, Exe: exe, Out: a.stdout, Log: a.log}
	res, err := e.Restart(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
