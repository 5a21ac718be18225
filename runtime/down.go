package runtime

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/sbx-dev/sbx/planner"
)

// Down stops and removes the named sandboxes (all of the state when names is empty) in
// reverse dependency order: a sandbox goes only after everything that depends on it. Each is
// removed from the state as soon as it is stopped; with Purge its directory (writable layer,
// logs) goes too.
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
	res := &Result{Errors: planner.Walk(ctx, nodes, e.Parallel, func(ctx context.Context, name string) error {
		if r := unrecorded[name]; r != nil {
			if err := e.stopUnrecorded(ctx, r); err != nil {
				return err
			}
			if st.Record(name) == nil {
				fmt.Fprintf(e.Out, "%s: stopped (it ran without a record in .sbx/)\n", name)
				return nil
			}
		}
		if err := e.destroy(ctx, name, e.Purge); err != nil {
			return err
		}
		fmt.Fprintf(e.Out, "%s: stopped and removed\n", name)
		return nil
	})}
	return res, nil
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
	return waitSupervisor(ctx, dir, pid, start, rs.Generation, reportTimeout(rs.Ready))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
