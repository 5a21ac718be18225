package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"syscall"

	"github.com/sbx-dev/sbx/planner"
)

// Down stops and removes the named sandboxes (all of the state when names is empty) in
// reverse dependency order: a sandbox goes only after everything that depends on it. Each is
// removed from the state as soon as it is stopped, with its directory: writable layer and
// console log (as compose down removes containers; Stop keeps them).
func (e *Engine) Down(ctx context.Context, names []string) (*Result, error) {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return nil, err
	}
	e.st = st
	// Sandboxes running without a record (their .sbx/ was removed) go too.
	unrecorded := map[string]*Running{}
	for _, r := range e.Project.Running() {
		if rec := st.Record(r.Name); rec == nil || rec.Pid != r.Pid {
			unrecorded[r.Name] = r
		}
	}
	if len(names) == 0 {
		names = st.Names()
		for n := range unrecorded {
			if st.Record(n) == nil {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if st.Record(n) == nil && unrecorded[n] == nil {
			return nil, fmt.Errorf("no sandbox %q in the state of %s (sbx ps lists them)", n, e.Project.Dir)
		}
	}
	res := &Result{Errors: e.reverseWalk(ctx, st, names, func(ctx context.Context, name string) error {
		if r := unrecorded[name]; r != nil {
			if err := e.stopUnrecorded(ctx, r); err != nil {
				return err
			}
			if st.Record(name) == nil {
				fmt.Fprintf(e.Out, "%s: stopped (it ran without a record in .sbx/)\n", name)
				return nil
			}
		}
		if err := e.destroy(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(e.Out, "%s: stopped and removed, with its writable layer and console log\n", name)
		return nil
	})}
	return res, nil
}

// reverseWalk runs fn for each of names in reverse dependency order: a sandbox only after
// every sandbox of names that depends on it.
func (e *Engine) reverseWalk(ctx context.Context, st *planner.State, names []string, fn func(context.Context, string) error) map[string]error {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	// Reverse edges: a sandbox waits for its dependents in the set to be down.
	wait := map[string][]string{}
	for _, n := range names {
		if st.Record(n) == nil {
			continue
		}
		for _, dep := range st.Record(n).Dependencies {
			if set[dep] {
				wait[dep] = append(wait[dep], n)
			}
		}
	}
	sort.Strings(names)
	nodes := make([]planner.Node, 0, len(names))
	for _, n := range names {
		nodes = append(nodes, planner.Node{Name: n, DependsOn: slices.Compact(slices.Sorted(slices.Values(wait[n])))})
	}
	return planner.Walk(ctx, nodes, e.Parallel, fn)
}

// Stop stops the named sandboxes (all of the state when names is empty), dependents first,
// keeping their records, directories and writable layers: Start (or up) starts them again.
func (e *Engine) Stop(ctx context.Context, names []string) (*Result, error) {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return nil, err
	}
	e.st = st
	if len(names) == 0 {
		names = st.Names()
	}
	for _, n := range names {
		if st.Record(n) == nil {
			return nil, fmt.Errorf("no sandbox %q in the state of %s (sbx ps -a lists them)", n, e.Project.Dir)
		}
	}
	obs := e.Project.Observe(st)
	res := &Result{Errors: e.reverseWalk(ctx, st, names, func(ctx context.Context, name string) error {
		if !obs[name].Live() {
			fmt.Fprintf(e.Out, "%s: already %s\n", name, obs[name])
			return nil
		}
		e.mu.Lock()
		rec := e.st.Record(name)
		e.mu.Unlock()
		if err := e.stopRecord(ctx, rec); err != nil {
			return err
		}
		if err := e.save(func(st *planner.State) {
			r := st.Record(name)
			r.Status, r.UpdatedAt = planner.StatusStopped, e.Now().UTC()
		}); errors.Is(err, syscall.ENOSPC) {
			// It is stopped all the same: a full disk must not keep anyone from stopping.
			fmt.Fprintf(e.Out, "%s: stopped, but not recorded (no space left on device): sbx ps shows it as crashed until there is space\n", name)
			return nil
		} else if err != nil {
			return err
		}
		fmt.Fprintf(e.Out, "%s: stopped (its writable layer is kept: 'sbx start %s' starts it again)\n", name, name)
		return nil
	})}
	return res, nil
}

// Start starts the named stopped, exited or crashed sandboxes (all of the state when names is
// empty) from the spec they last ran, keeping their writable layers; live ones are left alone.
func (e *Engine) Start(ctx context.Context, names []string) (*Result, error) {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return nil, err
	}
	e.st = st
	if len(names) == 0 {
		names = st.Names()
	}
	obs := e.Project.Observe(st)
	res := &Result{Errors: map[string]error{}}
	for _, name := range startOrder(st, names) {
		rec := st.Record(name)
		if rec == nil {
			return nil, fmt.Errorf("no sandbox %q in the state: 'sbx up %s' creates it", name, name)
		}
		if obs[name].Live() {
			fmt.Fprintf(e.Out, "%s: already %s\n", name, obs[name])
			continue
		}
		if err := e.restart(ctx, rec); err != nil {
			res.Errors[name] = err
			continue
		}
		fmt.Fprintf(e.Out, "%s: started\n", name)
	}
	return res, nil
}

// startOrder orders names so that each comes after the ones it depends on.
func startOrder(st *planner.State, names []string) []string {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	var out []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		if r := st.Record(n); r != nil {
			for _, d := range r.Dependencies {
				if set[d] {
					visit(d)
				}
			}
		}
		out = append(out, n)
	}
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	for _, n := range sorted {
		visit(n)
	}
	return out
}

// Restart stops the named sandboxes and starts them again from the spec they run, keeping
// their writable layer and generation, one after the other in the given order.
func (e *Engine) Restart(ctx context.Context, names []string) (*Result, error) {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return nil, err
	}
	e.st = st
	res := &Result{Errors: map[string]error{}}
	for _, name := range names {
		rec := st.Record(name)
		if rec == nil {
			return nil, fmt.Errorf("no sandbox %q in the state: 'sbx up %s' starts it", name, name)
		}
		if err := e.restart(ctx, rec); err != nil {
			res.Errors[name] = err
			continue
		}
		fmt.Fprintf(e.Out, "%s: restarted\n", name)
	}
	return res, nil
}

func (e *Engine) restart(ctx context.Context, rec *planner.Record) error {
	dir := e.Project.SandboxDir(rec.Name)
	if err := checkSpace(dir); err != nil {
		return err
	}
	rs, err := ReadRunSpec(dir)
	if err != nil {
		return fmt.Errorf("restart %s: %w", rec.Name, err)
	}
	if err := e.stopRecord(ctx, rec); err != nil {
		return err
	}
	_ = os.Remove(RecordPath(dir))
	pid, start, err := spawnSupervisor(e.Exe, dir)
	if err != nil {
		return err
	}
	now := e.Now().UTC()
	if err := e.save(func(st *planner.State) {
		r := st.Record(rec.Name)
		r.Pid, r.StartTime, r.Status, r.StartedAt, r.UpdatedAt = pid, start, planner.StatusRunning, now, now
	}); err != nil {
		_ = stopSupervisor(context.WithoutCancel(ctx), pid, start, stopGrace(rs.StopTimeout))
		return err
	}
	return waitSupervisor(ctx, dir, pid, start, rs.Generation, rs.Ready)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
