package main

import "fmt"

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
	e, release, err := a.stateEngine(ctx, dir, a.stdout)
	if err != nil {
		return err
	}
	defer release()
	e.Parallel, e.Purge = c.Parallel, c.Purge
	res, err := e.Down(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
