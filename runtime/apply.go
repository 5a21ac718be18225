package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
)

// Image is an image ready on disk, as a driver consumes it.
type Image struct {
	Digest  string
	Layers  []string // layer directories, bottom to top
	RootDir string   // for dir: images, used read-only
	Config  ImageConfig
}

// Images gets images onto the disk. The image store implements it; Ensure pulls only what is
// missing.
type Images interface {
	Ensure(ctx context.Context, ref string) (*Image, error)
}

// Engine applies plans to one project. It is used for one apply while holding the state lock.
type Engine struct {
	Project *Project
	Lock    *state.Lock
	Images  Images
	// Driver is the driver name recorded for new sandboxes ("krun" or "ns").
	Driver string
	// Exe is the sbx binary re-executed as supervisor.
	Exe      string
	Parallel int
	// Out receives one line per step as it completes.
	Out io.Writer
	Log *slog.Logger
	Now func() time.Time
	// AfterPull, when set, runs once every image is on disk (progress bars end there).
	AfterPull func()

	mu sync.Mutex // guards st and the state file
	st *planner.State
}

// Result is the outcome of an apply: the error of every step that failed or was not started.
type Result struct {
	Errors map[string]error
}

// Err summarises the failures, naming each failed sandbox once.
func (r *Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	var errs []error
	for _, name := range sortedKeys(r.Errors) {
		errs = append(errs, fmt.Errorf("sandbox %s: %w", name, r.Errors[name]))
	}
	return errors.Join(errs...)
}

// ErrStale is returned when the plan was computed from another state than the one on disk.
var ErrStale = planner.ErrStalePlan

// Apply executes plan, computed from cfg: it refuses a plan older than the state, pulls the
// images it needs, then walks the steps — destroys in reverse dependency order, then creates,
// replacements and starts in dependency order, each after its dependencies are ready — writing
// the state after every step. A failed step skips its dependents; independent steps go on.
func (e *Engine) Apply(ctx context.Context, cfg *lang.Config, plan *planner.Plan) (*Result, error) {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return nil, err
	}
	if err := plan.Stale(st); err != nil {
		return nil, err
	}
	if err := plan.Err(); err != nil {
		return nil, err
	}
	e.st = st
	res := &Result{Errors: map[string]error{}}

	images := e.pullAll(ctx, plan, res)
	if e.AfterPull != nil {
		e.AfterPull()
	}

	errs := plan.Walk(ctx, e.Parallel, func(ctx context.Context, step *planner.Step) error {
		if err, failed := res.Errors[step.Sandbox]; failed {
			return err // its pull failed
		}
		var err error
		switch step.Action {
		case planner.ActionDestroy:
			err = e.destroy(ctx, step.Sandbox)
		case planner.ActionCreate, planner.ActionReplace, planner.ActionStart:
			err = e.start(ctx, cfg, step, images[step.Sandbox])
		case planner.ActionUpdate:
			err = e.update(step)
		}
		if err == nil {
			fmt.Fprintf(e.Out, "%s: %s done\n", step.Sandbox, step.Action)
		}
		return err
	})
	for name, err := range errs {
		if _, ok := res.Errors[name]; !ok {
			res.Errors[name] = err
		}
	}
	return res, nil
}

func (e *Engine) defaults() {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if e.Out == nil {
		e.Out = io.Discard
	}
}

// pullAll ensures the image of every step that starts a sandbox, each image once and several
// at a time; a failure is recorded as the error of every step that needed that image.
func (e *Engine) pullAll(ctx context.Context, plan *planner.Plan, res *Result) map[string]*Image {
	users := map[string][]string{} // image ref -> sandboxes
	var refs []string
	for i := range plan.Steps {
		step := &plan.Steps[i]
		if step.Desired == nil || step.Action == planner.ActionUpdate {
			continue
		}
		ref := step.Desired.Image
		if users[ref] == nil {
			refs = append(refs, ref)
		}
		users[ref] = append(users[ref], step.Sandbox)
	}
	out := map[string]*Image{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(e.Parallel, 1))
	for _, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			img, err := e.Images.Ensure(ctx, ref)
			mu.Lock()
			defer mu.Unlock()
			for _, name := range users[ref] {
				if err != nil {
					res.Errors[name] = fmt.Errorf("pull %s: %w", ref, err)
				} else {
					out[name] = img
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// save writes the state with fn applied, under the engine's mutex.
func (e *Engine) save(fn func(st *planner.State)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.st)
	return e.Lock.Write(e.st)
}

// start creates, replaces or starts one sandbox and waits until it is ready.
func (e *Engine) start(ctx context.Context, cfg *lang.Config, step *planner.Step, img *Image) error {
	sb := step.Desired
	dir := e.Project.SandboxDir(sb.Name)
	prior := step.Prior

	// Everything a sandbox waits for must be ready, including dependencies this plan leaves
	// alone (they have no step, so the walk does not order on them).
	if err := e.waitDependencies(ctx, cfg, sb.Name); err != nil {
		return err
	}
	generation := 1
	created := e.Now().UTC()
	if prior != nil {
		generation = prior.Generation
		if step.Action != planner.ActionStart {
			generation++
		}
		if !prior.CreatedAt.IsZero() {
			created = prior.CreatedAt
		}
	}
	rs, err := BuildRunSpec(e.Project, e.Driver, cfg, sb, img, generation)
	if err != nil {
		return fmt.Errorf("resolve the run spec: %w", err)
	}
	// What this sandbox needs of the driver (a libkrun capability, a mount source) is checked
	// before the old run is stopped, so a spec that cannot run leaves the old one running.
	d, err := NewDriver(rs.Driver, e.Exe, e.Log)
	if err != nil {
		return err
	}
	if err := d.Validate(ctx, rs); err != nil {
		return fmt.Errorf("check the spec with the driver: %w", err)
	}
	if prior != nil {
		// Replace or start: whatever is left of the old run goes first (its ports and IP too).
		if err := e.stopRecord(ctx, prior); err != nil {
			return fmt.Errorf("stop the previous run: %w", err)
		}
	}
	// The writable layer survives restarts, starts and replacements that keep the image (and a
	// stop); over another image's layers it would show a mix of both.
	if err := state.EnsureDirs(e.Project.Store.Dir(), filepath.Join("sandboxes", sb.Name)); err != nil {
		return err
	}
	if err := checkSpace(e.Project.Store.Dir()); err != nil {
		return err
	}
	if r := e.Project.runningElsewhere(sb.Name, 0); r != nil {
		return fmt.Errorf("%s is already running (supervisor pid %d) though the state in .sbx/ lost track of it (was .sbx/ removed?); a second copy would share its writable layer: 'sbx down %s' stops it", sb.Name, r.Pid, sb.Name)
	}
	keepLayer := true
	if old, err := ReadRunSpec(dir); err == nil {
		keepLayer = old.Image.Digest == rs.Image.Digest && slices.Equal(old.Image.Layers, rs.Image.Layers)
	}
	if !keepLayer {
		if err := state.RemoveBeneath(dir, "rw"); err != nil {
			return fmt.Errorf("drop the writable layer: %w", err)
		}
	}
	if err := WriteRunSpec(rs); err != nil {
		return err
	}
	_ = os.Remove(RecordPath(dir))
	pid, startTime, err := spawnSupervisor(e.Exe, dir)
	if err != nil {
		return fmt.Errorf("start the supervisor: %w", err)
	}
	now := e.Now().UTC()
	rec := planner.NewRecord(sb, cfg.Dependencies(sb.Name), img.Digest)
	rec.Pid, rec.StartTime, rec.Status, rec.Generation, rec.Driver = pid, startTime, planner.StatusRunning, generation, rs.Driver
	rec.CreatedAt, rec.UpdatedAt, rec.StartedAt = created, now, now
	if err := e.save(func(st *planner.State) { st.Sandboxes[sb.Name] = rec }); err != nil {
		// The sandbox runs but the state does not know it: stop it rather than leak it.
		_ = stopSupervisor(context.WithoutCancel(ctx), pid, startTime, stopGrace(sb.StopTimeout))
		return fmt.Errorf("record the sandbox in the state: %w", err)
	}
	return waitSupervisor(ctx, dir, pid, startTime, generation, rs.Ready)
}

// reportTimeout bounds the wait for a supervisor to say whether its sandbox is ready: the
// probe's own timeout (after which the supervisor says unready), plus time to start the
// payload. Only a stuck supervisor reaches it.
func reportTimeout(r *spec.Ready) time.Duration {
	const startup = 30 * time.Second
	if r != nil {
		return r.Timeout + startup
	}
	return startup
}

// stopGrace is how long a supervisor gets to stop its payload before it is killed.
func stopGrace(stopTimeout time.Duration) time.Duration {
	return stopTimeout + 10*time.Second
}

// writableDir is the sandbox's writable layer (upper and work dirs live below it).
func writableDir(dir string) string { return dir + "/rw" }

// waitDependencies waits until every sandbox name depends on reports ready.
func (e *Engine) waitDependencies(ctx context.Context, cfg *lang.Config, name string) error {
	for _, dep := range cfg.Dependencies(name) {
		e.mu.Lock()
		rec := e.st.Record(dep)
		e.mu.Unlock()
		if rec == nil || rec.Pid == 0 {
			return fmt.Errorf("not started: dependency %s is not running", dep)
		}
		var probe *spec.Ready
		if rs, err := ReadRunSpec(e.Project.SandboxDir(dep)); err == nil {
			probe = rs.Ready
		}
		if err := waitSupervisor(ctx, e.Project.SandboxDir(dep), rec.Pid, rec.StartTime, rec.Generation, probe); err != nil {
			return fmt.Errorf("not started: dependency %s is not ready: %w", dep, err)
		}
	}
	return nil
}

// stopRecord stops the supervisor of rec, if alive, and cleans up after its payload whatever
// happened to it (a supervisor killed with -9 cleaned nothing).
func (e *Engine) stopRecord(ctx context.Context, rec *planner.Record) error {
	if err := stopSupervisor(ctx, rec.Pid, rec.StartTime, stopGrace(rec.Spec.StopTimeout)); err != nil {
		return err
	}
	return e.cleanup(ctx, rec.Name)
}

// cleanup runs the driver's cleanup for the run spec left in the sandbox directory.
func (e *Engine) cleanup(ctx context.Context, name string) error {
	rs, err := ReadRunSpec(e.Project.SandboxDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if errors.Is(err, errOldRunSpec) {
		// Started by another sbx version: its supervisor cleaned up when it stopped; what a
		// killed one left cannot be known from here.
		e.Log.Warn("cannot clean up after a sandbox started by another sbx version", "sandbox", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean up after %s: %w", name, err)
	}
	d, err := NewDriver(rs.Driver, e.Exe, e.Log)
	if err != nil {
		return fmt.Errorf("clean up after %s: %w", name, err)
	}
	return d.Cleanup(ctx, rs)
}

// destroy stops a sandbox and removes its record and its directory: writable layer, console
// log, supervisor record. (Stop keeps them.)
func (e *Engine) destroy(ctx context.Context, name string) error {
	e.mu.Lock()
	rec := e.st.Record(name)
	e.mu.Unlock()
	if rec != nil {
		if err := e.stopRecord(ctx, rec); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
	}
	if err := state.RemoveBeneath(e.Project.Store.Dir(), filepath.Join("sandboxes", name)); err != nil {
		return err
	}
	return e.save(func(st *planner.State) { delete(st.Sandboxes, name) })
}

// update rewrites the record of a sandbox whose only changes apply in place.
func (e *Engine) update(step *planner.Step) error {
	return e.save(func(st *planner.State) {
		old := st.Record(step.Sandbox)
		rec := planner.NewRecord(step.Desired, old.Dependencies, old.ImageDigest)
		rec.Pid, rec.StartTime, rec.Status, rec.Generation, rec.Driver = old.Pid, old.StartTime, old.Status, old.Generation, old.Driver
		rec.CreatedAt, rec.StartedAt, rec.UpdatedAt = old.CreatedAt, old.StartedAt, e.Now().UTC()
		st.Sandboxes[step.Sandbox] = rec
	})
}

// AwaitReady waits for the live sandboxes of names (all of the state when empty) that are
// not ready yet — starting, or unready after a failed probe — to become ready, each for at
// most its probe's timeout, and returns the error of each that did not, or that crashed or
// failed after it started. So an up that changes
// nothing still says, with its exit code, that a sandbox is not ready.
func (e *Engine) AwaitReady(ctx context.Context, names []string) map[string]error {
	e.defaults()
	st, err := e.Lock.Read()
	if err != nil {
		return map[string]error{"": err}
	}
	if len(names) == 0 {
		names = st.Names()
	}
	errs := map[string]error{}
	obs := e.Project.Observe(st)
	for _, name := range names {
		rec := st.Record(name)
		if rec == nil {
			continue
		}
		switch obs[name] {
		case planner.StatusUnready, planner.StatusStarting:
		case planner.StatusCrashed, planner.StatusFailed:
			if sup, _ := ReadRecord(e.Project.SandboxDir(name)); sup != nil && sup.Error != "" {
				errs[name] = errors.New(sup.Error)
			} else {
				errs[name] = fmt.Errorf("%s after it started: 'sbx logs %s' shows why", obs[name], name)
			}
			continue
		default:
			continue
		}
		dir := e.Project.SandboxDir(name)
		rs, err := ReadRunSpec(dir)
		if err != nil || rs.Ready == nil {
			continue
		}
		if err := waitReadyAgain(ctx, dir, rec.Pid, rs.Ready.Timeout); err != nil {
			errs[name] = err
		}
	}
	return errs
}

// waitReadyAgain waits up to timeout for the supervisor of dir to report its sandbox ready.
func waitReadyAgain(ctx context.Context, dir string, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, _ := ReadRecord(dir)
		if rec == nil || rec.Pid != pid {
			return errSupervisorGone
		}
		if rec.Status == planner.StatusReady {
			return nil
		}
		select {
		case <-ctx.Done():
			if rec.Status == planner.StatusUnready {
				return fmt.Errorf("%w: %s (it is probed again: sbx ps shows when it becomes ready)", ErrUnready, rec.Error)
			}
			return fmt.Errorf("%w: %s after %s", ErrUnready, rec.Status, timeout)
		case <-tick.C:
		}
	}
}
