package main

type stopCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Stop only these sandboxes (default: all of this project)."`
	Parallel int      `help:"How many sandboxes to stop at once." default:"4"`
}

// Run stops sandboxes and keeps them: their writable layers, logs and records stay, and
// 'sbx start' or 'sbx up' starts them again. 'sbx down' is what removes them.
func (c *stopCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	e, release, err := a.stateEngine(ctx, dir, a.stdout)
	if err != nil {
		return err
	}
	defer release()
	e.Parallel = c.Parallel
	res, err := e.Stop(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
