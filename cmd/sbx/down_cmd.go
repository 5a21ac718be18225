package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/state"
)

type downCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Remove only these sandboxes (default: every sandbox in the state, even those no longer in the Sandboxfile)."`
	Purge    bool     `hidden:"" help:"Kept for older scripts: down always deletes the writable layers and console logs now."`
	Parallel int      `help:"How many sandboxes to stop at once." default:"4"`
}

func (c *downCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	_, err = os.Lstat(filepath.Join(dir, state.DirName))
	if errors.Is(err, fs.ErrNotExist) && len(runtime.NewProject("", dir).Running()) == 0 {
		fmt.Fprintln(a.stdout, "Nothing to stop.")
		return nil
	}
	// The state is read under the lock: an up running meanwhile finishes first, and what it
	// started is stopped too.
	e, release, err := a.stateEngine(ctx, dir, a.stdout)
	if err != nil {
		return err
	}
	defer release()
	if st, err := e.Lock.Read(); err != nil {
		return err
	} else if len(st.Sandboxes) == 0 && len(e.Project.Running()) == 0 {
		fmt.Fprintln(a.stdout, "Nothing to stop.")
		return nil
	}
	e.Parallel = c.Parallel
	res, err := e.Down(ctx, c.Targets)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
