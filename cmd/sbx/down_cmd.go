package main

import (
	"fmt"

	"github.com/sbx-dev/sbx/runtime"
)

type downCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Stop only these sandboxes (default: every sandbox in the state, even those no longer in the Sandboxfile)."`
	Purge    bool     `help:"Also delete the sandboxes' writable layers and console logs."`
	Parallel int      `help:"How many sandboxes to stop at once." default:"4"`
}

func (c *downCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	st, _, err := observed(dir)
	if err != nil {
		return err
	}
	if len(st.Sandboxes) == 0 {
		fmt.Fprintln(a.stdout, "Nothing to stop.")
		return nil
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
	e := &runtime.Engine{
		Project: runtime.NewProject("", dir), Lock: l, Exe: exe, Parallel: c.Parallel,
		Out: a.stdout, Log: a.log, Purge: c.Purge,
	}
	res, err := e.Down(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
