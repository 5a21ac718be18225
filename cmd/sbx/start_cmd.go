package main

type startCmd struct {
	Targets []string `arg:"" optional:"" name:"sandbox" help:"Start only these sandboxes (default: every stopped one of this project)."`
}

// Run starts stopped sandboxes as they last ran, with their writable layers, dependencies
// first. It does not read the Sandboxfile: 'sbx up' applies changes.
func (c *startCmd) Run(a *app) error {
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
	res, err := e.Start(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
