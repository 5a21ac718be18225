package main

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
	e, release, err := a.stateEngine(ctx, dir, a.stdout)
	if err != nil {
		return err
	}
	defer release()
	res, err := e.Restart(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
