package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
)

//go:embed starter.Sandboxfile
var starter []byte

type initCmd struct {
	Force bool `help:"Overwrite an existing Sandboxfile."`
}

func (c *initCmd) Run(a *app) error {
	path, err := a.sandboxfile()
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if c.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists: sbx init never overwrites it (use --force to replace it)", displayPath(path))
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(starter); err != nil {
		f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(a.stdout, "Wrote %s. Next: edit it, then run 'sbx validate' and 'sbx plan'.\n", displayPath(path))
	return nil
}
