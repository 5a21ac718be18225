package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
	"github.com/sbx-dev/sbx/runtime/state"
)

// signalContext is cancelled by Ctrl-C or SIGTERM, so waits end and locks are released.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// driverName picks the driver: --driver or SBX_DRIVER, then the project block, then krun.
func (a *app) driverName(cfg *lang.Config) string {
	switch {
	case a.g.Driver != "":
		return a.g.Driver
	case cfg != nil && cfg.Project.Driver != "":
		return cfg.Project.Driver
	}
	return lang.DefaultDriver
}

// project returns the runtime's view of the project of cfg.
func (a *app) project(cfg *lang.Config) *runtime.Project {
	return runtime.NewProject(cfg.Project.Name, cfg.Dir)
}

// projectDir is the directory of the Sandboxfile, for commands that work from the state alone.
func (a *app) projectDir() (string, error) {
	path, err := a.sandboxfile()
	if err != nil {
		return "", err
	}
	return filepath.Dir(path), nil
}

// lock takes the project's state lock, waiting up to --lock-timeout.
func (a *app) lock(ctx context.Context, dir string) (*state.Lock, error) {
	return state.New(dir).Lock(ctx, state.WithTimeout(a.g.LockTimeout))
}

// imageStore opens the image store under $SBX_HOME.
func (a *app) imageStore(opts ...image.Option) (*image.Store, error) {
	root, err := image.DefaultRoot(os.Getenv)
	if err != nil {
		return nil, err
	}
	opts = append([]image.Option{image.WithLogger(a.log)}, opts...)
	return image.Open(root, opts...)
}

// engine assembles an apply engine for cfg under lock l.
func (a *app) engine(cfg *lang.Config, l *state.Lock, parallel int) (*runtime.Engine, error) {
	store, err := a.imageStore()
	if err != nil {
		return nil, err
	}
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	// Remember the project, so that pruning the store from anywhere keeps what it uses.
	if err := runtime.RegisterProject(store.Root(), cfg.Dir); err != nil {
		a.log.Warn("register project with the image store", "err", err)
	}
	progress := image.NewProgress(a.stdout, a.tty)
	return &runtime.Engine{
		Project:   a.project(cfg),
		Lock:      l,
		Images:    runtime.StoreImages{Store: store, Progress: func(string) image.Progress { return progress }},
		AfterPull: progress.Wait,
		Driver:    a.driverName(cfg),
		Exe:       exe,
		Parallel:  parallel,
		Out:       a.stdout,
		Log:       a.log,
	}, nil
}

// printResult prints the failures of an apply, each once, with where to look.
func (a *app) printResult(res *runtime.Result) error {
	if res == nil || len(res.Errors) == 0 {
		return nil
	}
	for _, name := range sortedNames(res.Errors) {
		fmt.Fprintf(a.stderr, "%s sandbox %s: %v\n", a.paint(a.ecolor, red, "Error:"), name, res.Errors[name])
	}
	return exitError{1}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sortStrings(names)
	return names
}

// observed reads the state and the liveness of every recorded supervisor.
func observed(dir string) (*planner.State, planner.Observed, error) {
	st, err := state.New(dir).Read()
	if err != nil {
		return nil, nil, err
	}
	return st, runtime.NewProject("", dir).Observe(st), nil
}

// stateEngine takes the project's lock and returns an engine for the commands that work from
// the state alone (down, restart); release unlocks.
func (a *app) stateEngine(ctx context.Context, dir string, out io.Writer) (e *runtime.Engine, release func(), err error) {
	exe, err := executable()
	if err != nil {
		return nil, nil, err
	}
	l, err := a.lock(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	e = &runtime.Engine{Project: runtime.NewProject("", dir), Lock: l, Exe: exe, Out: out, Log: a.log}
	return e, func() { _ = l.Unlock() }, nil
}

// onProject runs fn with the project's engine under the state lock, until a signal, and
// prints what failed: stop, start and restart are this and one engine call.
func (a *app) onProject(fn func(context.Context, *runtime.Engine) (*runtime.Result, error)) error {
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
	res, err := fn(ctx, e)
	if err != nil {
		return err
	}
	return a.printResult(res)
}
