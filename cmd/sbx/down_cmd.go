package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/state"
)

type downCmd struct {
	Targets  []string `arg:"" optional:"" name:"sandbox" help:"Remove only these sandboxes (default: every sandbox in the state, even those no longer in the Sandboxfile)."`
	Purge    bool     `hidden:"" help:"Kept for older scripts: down always deletes the writable layers and console logs now."`
	Parallel int      `help:"How many sandboxes to stop at once." default:"4"`
	Volumes  bool     `help:"Also delete the project's named volumes and the data they hold (kept otherwise)."`
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
	if c.Volumes && len(c.Targets) > 0 {
		return errors.New("--volumes deletes every volume of the project: use it without naming sandboxes")
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
		return c.volumes(a, e.Project, true)
	}
	e.Parallel = c.Parallel
	res, err := e.Down(ctx, c.Targets)
	if err != nil {
		return err
	}
	if err := a.printResult(res); err != nil {
		return err
	}
	if len(res.Errors) > 0 || len(c.Targets) > 0 {
		return nil
	}
	return c.volumes(a, e.Project, false)
}

// volumes deletes the volumes with --volumes, and otherwise says which were kept.
func (c *downCmd) volumes(a *app, p *runtime.Project, quiet bool) error {
	if c.Volumes {
		removed, err := p.RemoveVolumes(nil)
		for _, n := range removed {
			fmt.Fprintf(a.stdout, "volume %s: deleted with its data\n", n)
		}
		return err
	}
	vs, err := p.Volumes()
	if err != nil || len(vs) == 0 || quiet {
		return err
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	fmt.Fprintf(a.stdout, "Kept volumes: %s ('sbx down --volumes' deletes them).\n", strings.Join(names, ", "))
	return nil
}
