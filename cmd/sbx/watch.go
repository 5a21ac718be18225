package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/diskfile"
	"github.com/sbx-dev/sbx/runtime/state"
	"github.com/sbx-dev/sbx/runtime/watch"
)

// watch is sbx up --watch: apply, then re-apply on every save of the Sandboxfile or its
// inputs, and restart sandboxes whose watch paths change, streaming every console meanwhile.
func (c *upCmd) watch(ctx context.Context, a *app) error {
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	release, err := watchLock(ctx, a, dir)
	if err != nil {
		return err
	}
	defer release()

	// One writer for sbx's lines and every console, so lines never tear.
	out := &syncWriter{w: a.stdout, tty: a.tty}
	a.stdout = out
	w := &watcher{a: a, up: c, dir: dir, out: out, follow: map[string]context.CancelFunc{}}
	defer w.stopFollowing()

	w.say("watching %s (Ctrl-C stops watching; the sandboxes keep running)", displayPath(filepath.Join(dir, filepath.Base(a.g.File))))
	// Follow the consoles before the first apply, so nothing the sandboxes print is missed.
	if cfg, err := a.loadQuiet(); err == nil && cfg != nil {
		w.syncFollowers(ctx, cfg)
	}
	cfg, _ := w.applyAndReport(ctx, "start")
	fw, err := watch.New(watch.Options{
		Quiet:  c.Debounce,
		Ignore: w.ignored,
		Errors: func(err error) { w.say("watch: %v", err) },
		Queued: func(path string) { w.say("%s changed: queued: applying after the current one", w.rel(path)) },
	})
	if err != nil {
		return err
	}
	defer fw.Close()
	w.fw = fw
	w.watchInputs(cfg)
	w.syncFollowers(ctx, cfg)

	w.updateStatus()
	go w.refreshStatus(ctx)
	err = fw.Run(ctx, func(b watch.Batch) { w.handle(ctx, b); w.updateStatus() })
	out.setStatus("")
	if err != nil {
		return err
	}
	w.stopFollowing()
	fmt.Fprintln(a.stdout)
	if c.DownOnExit {
		w.say("stopping the sandboxes (--down-on-exit)")
		down := &downCmd{Parallel: c.Parallel}
		return down.Run(a)
	}
	w.say("stopped watching; the sandboxes keep running ('sbx down' stops them)")
	return nil
}

// watchLock refuses a second sbx up --watch on the same project while one runs.
func watchLock(ctx context.Context, a *app, dir string) (func(), error) {
	// Taking the state lock once creates .sbx/ with its .gitignore.
	l, err := a.lock(ctx, dir)
	if err != nil {
		return nil, err
	}
	sdir := filepath.Dir(a.project(&lang.Config{Dir: dir}).Store.StatePath())
	_ = l.Unlock()
	path := filepath.Join(sdir, "watch.lock")
	held, err := diskfile.TryLock(path)
	if errors.Is(err, diskfile.ErrWouldBlock) {
		b, _ := state.ReadFile(path)
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "another process"
		}
		return nil, fmt.Errorf("sbx up --watch is already running for this project (%s): stop it first (Ctrl-C in its terminal), or use that one", holder)
	}
	if err != nil {
		return nil, fmt.Errorf("watch lock: %w", err)
	}
	f := held.File()
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = held.Unlock()
	}, nil
}

type watcher struct {
	a   *app
	up  *upCmd
	dir string
	out *syncWriter
	fw  *watch.Watcher

	generation int
	outcome    string          // "live" or "failed": how the current generation went
	cfg        *lang.Config    // the last configuration that loaded
	inputs     map[string]bool // files whose change means re-reading the Sandboxfile
	autoVars   string          // pattern of the auto variable files: inputs even when new
	ignore     *watch.Patterns // .sbxignore
	perBox     map[string]*watch.Patterns

	mu     sync.Mutex
	follow map[string]context.CancelFunc
}

func (w *watcher) say(format string, args ...any) {
	w.out.line(w.a.paint(w.a.color, bold, "[sbx]") + " " + fmt.Sprintf(format, args...))
}

// applyAndReport applies the Sandboxfile and says what is now live. It returns the
// configuration that was applied (the previous one when the file does not load) and the
// sandboxes the apply started.
func (w *watcher) applyAndReport(ctx context.Context, why string) (*lang.Config, map[string]bool) {
	started := map[string]bool{}
	out, err := w.up.apply(ctx, w.a)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			w.say("the Sandboxfile has errors (above): nothing changed, every sandbox keeps running as it was")
		} else {
			w.say("apply failed: %v", err)
		}
		return w.cfg, started
	}
	w.cfg = out.cfg
	if !out.plan.HasChanges() {
		w.say("generation %d live: no changes (%s)", w.generation, why)
		return out.cfg, started
	}
	w.generation++
	var parts []string
	for _, s := range out.plan.Steps {
		parts = append(parts, describeStep(s))
		if s.Action != planner.ActionDestroy && s.Action != planner.ActionUpdate {
			started[s.Sandbox] = true
		}
	}
	w.report(strings.Join(parts, ", "), out.res.Errors)
	return out.cfg, started
}

// describeStep is "replaced api (env.LOG_LEVEL)", "created db", "started cache (crashed)".
func describeStep(s planner.Step) string {
	verb := map[planner.Action]string{
		planner.ActionCreate: "created", planner.ActionDestroy: "destroyed", planner.ActionReplace: "replaced",
		planner.ActionStart: "started", planner.ActionUpdate: "updated",
	}[s.Action]
	d := verb + " " + s.Sandbox
	var fields []string
	for _, c := range s.Changes {
		fields = append(fields, c.Field)
	}
	switch {
	case len(fields) > 0:
		d += " (" + strings.Join(fields, ", ") + ")"
	case s.Reason != "" && s.Action == planner.ActionStart:
		d += " (" + s.Reason + ")"
	}
	return d
}

// watchInputs adds the files the configuration was read from and each sandbox's watch paths.
func (w *watcher) watchInputs(cfg *lang.Config) {
	w.inputs = map[string]bool{}
	sbxfile, _ := w.a.sandboxfile()
	files := []string{sbxfile, filepath.Join(w.dir, ".sbxignore")}
	if cfg != nil {
		files = append(files, cfg.VarFiles...)
		files = append(files, cfg.ReadFiles...)
	}
	for _, f := range files {
		w.inputs[f] = true
		if err := w.fw.AddFile(f); err != nil {
			w.say("cannot watch %s: %v", f, err)
		}
	}
	// A new *.auto.sbxvars.hcl is an input too.
	auto := filepath.Join(w.dir, "*.auto.sbxvars.hcl")
	if err := w.fw.AddGlob(auto); err != nil {
		w.say("cannot watch %s: %v", auto, err)
	}
	w.autoVars = auto
	w.ignore, _ = watch.ReadPatterns(filepath.Join(w.dir, ".sbxignore"))
	w.perBox = map[string]*watch.Patterns{}
	if cfg == nil {
		return
	}
	for _, s := range cfg.Sandboxes {
		if s.Watch == nil {
			continue
		}
		w.perBox[s.Name] = watch.NewPatterns(w.dir, s.Watch.Ignore)
		for _, p := range s.Watch.Paths {
			if err := w.fw.AddTree(p); err != nil {
				w.say("sandbox %s: cannot watch %s: %v", s.Name, p, err)
			}
		}
	}
}

// ignored applies .sbxignore to every watched path; the Sandboxfile's inputs are never
// ignored.
func (w *watcher) ignored(path string, isDir bool) bool {
	if w.isInput(path) {
		return false
	}
	return w.ignore.Match(path, isDir)
}

// handle reacts to one batch of changes: re-apply when an input of the configuration
// changed, then restart the sandboxes whose watch paths changed (unless the apply just
// replaced them).
func (w *watcher) handle(ctx context.Context, b watch.Batch) {
	reload := false
	for _, p := range b.Paths {
		if w.isInput(p) {
			reload = true
		}
	}
	fresh := map[string]bool{}
	if sbxfile, _ := w.a.sandboxfile(); reload && !exists(sbxfile) {
		w.say("%s was deleted: the sandboxes keep running as they are (restore it to go on; 'sbx down' stops them)", w.rel(sbxfile))
		reload = false
	}
	if reload {
		w.say("%s changed: applying", w.rel(w.firstInput(b.Paths)))
		var cfg *lang.Config
		cfg, fresh = w.applyAndReport(ctx, "saved without changes")
		if cfg != nil {
			w.watchInputs(cfg)
			w.syncFollowers(ctx, cfg)
		}
	}
	restart, cause := w.sandboxesWatching(b.Paths)
	var names []string
	for _, n := range restart {
		if !fresh[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	w.say("%s changed: restarting %s", w.rel(cause), strings.Join(names, ", "))
	w.generation++
	errs, err := w.restart(ctx, names)
	if err != nil {
		w.outcome = "failed"
		w.say("generation %d failed: restart: %v", w.generation, err)
		return
	}
	w.report("restarted "+strings.Join(names, ", "), errs)
}

// report says the current generation is live when every sandbox it changed started and is
// ready, and that it failed otherwise, with each sandbox's reason.
func (w *watcher) report(what string, errs map[string]error) {
	if len(errs) == 0 {
		w.outcome = "live"
		w.say("generation %d live: %s", w.generation, what)
		return
	}
	var why []string
	for _, name := range sortedNames(errs) {
		why = append(why, fmt.Sprintf("%s: %v", name, errs[name]))
	}
	w.outcome = "failed"
	w.say("generation %d failed: %s (%s)", w.generation, strings.Join(why, "; "), what)
}

// sandboxesWatching lists the sandboxes with a watch path above one of paths that its
// ignore patterns do not exclude, sorted, and one path that caused a restart.
func (w *watcher) sandboxesWatching(paths []string) (out []string, cause string) {
	if w.cfg == nil {
		return nil, ""
	}
	for _, s := range w.cfg.Sandboxes {
		if s.Watch == nil {
			continue
		}
	paths:
		for _, p := range paths {
			if w.perBox[s.Name].Match(p, false) {
				continue
			}
			for _, root := range s.Watch.Paths {
				if p == root || strings.HasPrefix(p, root+string(filepath.Separator)) {
					out = append(out, s.Name)
					if cause == "" {
						cause = p
					}
					break paths
				}
			}
		}
	}
	sort.Strings(out)
	return out, cause
}

// restart restarts names and waits until they are ready; it returns each sandbox that did
// not start or did not become ready, with the reason.
func (w *watcher) restart(ctx context.Context, names []string) (map[string]error, error) {
	e, release, err := w.a.stateEngine(ctx, w.dir, io.Discard)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := e.Restart(ctx, names)
	if err != nil {
		return nil, err
	}
	errs := map[string]error{}
	var waiting []string
	for _, n := range names {
		if err := res.Errors[n]; err != nil {
			errs[n] = err
		} else {
			waiting = append(waiting, n)
		}
	}
	for n, err := range e.AwaitReady(ctx, waiting) {
		errs[n] = err
	}
	return errs, nil
}

func (w *watcher) rel(p string) string {
	if r, err := filepath.Rel(w.dir, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// isInput says whether a change of p means reading the Sandboxfile again.
func (w *watcher) isInput(p string) bool {
	if w.inputs[p] {
		return true
	}
	ok, _ := filepath.Match(w.autoVars, p)
	return ok
}

func (w *watcher) firstInput(paths []string) string {
	for _, p := range paths {
		if w.isInput(p) {
			return p
		}
	}
	return paths[0]
}

// syncFollowers streams the console of every sandbox of cfg, prefixed with its name.
func (w *watcher) syncFollowers(ctx context.Context, cfg *lang.Config) {
	w.mu.Lock()
	defer w.mu.Unlock()
	width := 0
	for _, s := range cfg.Sandboxes {
		width = max(width, len(s.Name))
	}
	p := runtime.NewProject("", w.dir)
	want := map[string]bool{}
	for i, s := range cfg.Sandboxes {
		want[s.Name] = true
		if w.follow[s.Name] != nil {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		w.follow[s.Name] = cancel
		prefix := w.a.paint(w.a.color, palette[i%len(palette)], fmt.Sprintf("%-*s |", width, s.Name)) + " "
		lc := &logsCmd{Follow: true, Tail: 0, escape: w.a.tty}
		go lc.show(fctx, p.ConsoleLog(s.Name), prefix, &lockedWriter{w: w.out})
	}
	for name, cancel := range w.follow {
		if !want[name] {
			cancel()
			delete(w.follow, name)
		}
	}
}

func (w *watcher) stopFollowing() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, cancel := range w.follow {
		cancel()
		delete(w.follow, name)
	}
}

// syncWriter serialises writes from sbx and the console followers. On a terminal it keeps a
// status line at the bottom: cleared before each write and drawn again after it.
type syncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	status string
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == "" {
		return s.w.Write(p)
	}
	_, _ = io.WriteString(s.w, "\r\x1b[2K")
	n, err := s.w.Write(p)
	_, _ = io.WriteString(s.w, s.status)
	return n, err
}

// setStatus replaces the status line (only on a terminal); "" removes it.
func (s *syncWriter) setStatus(text string) {
	if !s.tty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if text == s.status {
		return
	}
	_, _ = io.WriteString(s.w, "\r\x1b[2K"+text)
	s.status = text
}

// updateStatus draws "generation 7 live · 4 ready · watching 212 files" at the bottom of a
// terminal.
func (w *watcher) updateStatus() {
	if !w.out.tty {
		return
	}
	parts := []string{fmt.Sprintf("generation %d", w.generation)}
	if w.outcome != "" {
		parts[0] += " " + w.outcome
	}
	p := runtime.NewProject("", w.dir)
	if st, err := p.Store.Read(); err == nil {
		counts := map[planner.Status]int{}
		for _, s := range p.Observe(st) {
			counts[s]++
		}
		for _, s := range []planner.Status{planner.StatusReady, planner.StatusRunning, planner.StatusStarting, planner.StatusUnready, planner.StatusRestarting, planner.StatusCrashed, planner.StatusFailed, planner.StatusExited, planner.StatusStopped} {
			if counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			}
		}
	}
	if w.fw != nil {
		parts = append(parts, fmt.Sprintf("watching %d files", w.fw.Count()))
	}
	w.out.setStatus(w.a.paint(w.a.color, bold, "[sbx]") + " " + strings.Join(parts, " · "))
}

// refreshStatus keeps the status line current while sandboxes become ready or crash.
func (w *watcher) refreshStatus(ctx context.Context) {
	if !w.out.tty {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.updateStatus()
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (s *syncWriter) line(text string) {
	_, _ = s.Write([]byte(text + "\n"))
}
