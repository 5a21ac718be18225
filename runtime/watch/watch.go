// Package watch reports changes to files and directory trees in debounced batches, for
// sbx up --watch. It watches directories (so editors that save by renaming a new file over the
// old one are seen), adds new subdirectories of recursive roots as they appear, and drops
// paths matched by ignore patterns.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of the debounce.
const (
	DefaultQuiet = 300 * time.Millisecond
	DefaultMax   = 5 * time.Second
)

// Batch is the set of paths that changed during one burst of activity.
type Batch struct {
	Paths []string // absolute, sorted, without duplicates
	At    time.Time
}

// Options tune a Watcher.
type Options struct {
	// Quiet is how long no event must arrive before a batch is delivered (default 300 ms);
	// Max caps how long a burst of continuous changes can delay it (default 5 s).
	Quiet, Max time.Duration
	// Ignore decides whether a path is ignored; nil ignores nothing but the defaults (editor
	// temporary files, .git and .sbx).
	Ignore func(path string, isDir bool) bool
	// Errors receives errors of the underlying watcher (nil: dropped).
	Errors func(error)
	// Queued is told, once per batch, about the first change that arrives while the
	// previous batch is still being handled; that change is delivered as soon as the
	// handler returns (nil: nothing is said).
	Queued func(path string)
}

// Watcher watches files and trees.
type Watcher struct {
	o  Options
	fw *fsnotify.Watcher

	mu    sync.Mutex
	files map[string]bool // files watched through their directory
	globs []string        // patterns of files watched through their directory
	roots []string        // recursive roots
	dirs  map[string]bool // directories added to fsnotify
}

// New starts a watcher; Close stops it.
func New(o Options) (*Watcher, error) {
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	return &Watcher{o: o, fw: fw, files: map[string]bool{}, dirs: map[string]bool{}}, nil
}

// Close stops watching.
func (w *Watcher) Close() error { return w.fw.Close() }

// AddFile watches one file, through its directory, so that a rename over it is seen too.
func (w *Watcher) AddFile(path string) error {
	path = filepath.Clean(path)
	w.mu.Lock()
	w.files[path] = true
	w.mu.Unlock()
	return w.addDir(filepath.Dir(path))
}

// AddGlob watches the files of one directory whose names match a pattern (path.Match
// syntax over the whole path, e.g. /p/*.auto.sbxvars.hcl), including those created later.
func (w *Watcher) AddGlob(pattern string) error {
	pattern = filepath.Clean(pattern)
	w.mu.Lock()
	w.globs = append(w.globs, pattern)
	w.mu.Unlock()
	return w.addDir(filepath.Dir(pattern))
}

// AddTree watches a directory and everything below it (a file is watched as with AddFile).
func (w *Watcher) AddTree(root string) error {
	root = filepath.Clean(root)
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", root, err)
	}
	if !st.IsDir() {
		return w.AddFile(root)
	}
	w.mu.Lock()
	w.roots = append(w.roots, root)
	w.mu.Unlock()
	return w.addTree(root)
}

func (w *Watcher) addTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && w.ignored(p, true) {
			return filepath.SkipDir
		}
		return w.addDir(p)
	})
}

func (w *Watcher) addDir(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirs[dir] {
		return nil
	}
	if err := w.fw.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.dirs[dir] = true
	return nil
}

// Count returns how many directories are watched.
func (w *Watcher) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.dirs)
}

// relevant says whether an event on path concerns a watched file or tree.
func (w *Watcher) relevant(path string) (bool, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files[path] {
		return true, false
	}
	for _, g := range w.globs {
		if ok, _ := filepath.Match(g, path); ok {
			return true, false
		}
	}
	for _, r := range w.roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) {
			return true, true
		}
	}
	return false, false
}

func (w *Watcher) ignored(path string, isDir bool) bool {
	base := filepath.Base(path)
	if isDir && (base == ".git" || base == ".sbx") {
		return true
	}
	if !isDir && EditorTemp(base) {
		return true
	}
	for _, part := range strings.Split(path, string(filepath.Separator)) {
		if part == ".git" || part == ".sbx" {
			return true
		}
	}
	return w.o.Ignore != nil && w.o.Ignore(path, isDir)
}

// EditorTemp reports whether a file name is an editor's temporary or swap file: vim's .swp,
// .swx and 4913 probe, emacs's #name# and .#name, backups ending in ~, JetBrains' ___jb_tmp___
// and ___jb_old___, and the .tmp files many editors write before renaming.
func EditorTemp(base string) bool {
	switch {
	case base == "4913",
		strings.HasSuffix(base, "~"),
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"), strings.HasSuffix(base, ".swo"),
		strings.HasPrefix(base, ".#"),
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"),
		strings.HasSuffix(base, ".tmp"), strings.Contains(base, ".tmp."):
		return true
	}
	return false
}

// Run delivers batches to fn until ctx ends or the watcher is closed. fn runs on its own
// goroutine, one batch at a time: changes that arrive meanwhile are collected (and
// announced through Options.Queued) and delivered as the next batch once fn returns.
func (w *Watcher) Run(ctx context.Context, fn func(Batch)) error {
	pending := map[string]bool{}
	var first time.Time
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var maxC <-chan time.Time
	var maxT *time.Timer
	var done chan struct{} // non-nil while fn runs
	queued := false        // Options.Queued was told about the pending batch

	deliver := func() {
		if len(pending) == 0 || done != nil {
			return
		}
		b := Batch{At: time.Now()}
		for p := range pending {
			b.Paths = append(b.Paths, p)
		}
		sort.Strings(b.Paths)
		pending = map[string]bool{}
		first, queued = time.Time{}, false
		if maxT != nil {
			maxT.Stop()
			maxC = nil
		}
		done = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			fn(b)
		}(done)
	}
	// finish waits for a handler still running: Run never returns under it.
	finish := func() error {
		if done != nil {
			<-done
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return finish()
		case <-done:
			done = nil
			if len(pending) > 0 {
				quiet.Reset(w.o.Quiet)
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return finish()
			}
			if w.o.Errors != nil {
				w.o.Errors(err)
			}
		case ev, ok := <-w.fw.Events:
			if !ok {
				return finish()
			}
			if !w.accept(ev) {
				continue
			}
			pending[filepath.Clean(ev.Name)] = true
			if done != nil && !queued && w.o.Queued != nil {
				queued = true
				w.o.Queued(filepath.Clean(ev.Name))
			}
			if first.IsZero() {
				first = time.Now()
				maxT = time.NewTimer(w.o.Max)
				maxC = maxT.C
			}
			quiet.Reset(w.o.Quiet)
		case <-quiet.C:
			deliver()
		case <-maxC:
			deliver()
		}
	}
}

// accept filters one event, and follows new directories of recursive roots.
func (w *Watcher) accept(ev fsnotify.Event) bool {
	path := filepath.Clean(ev.Name)
	if ev.Op == fsnotify.Chmod {
		// touch(1) of a file is a change on purpose (Tilt users restart that way); metadata
		// changes of directories are not.
		if st, err := os.Lstat(path); err != nil || st.IsDir() {
			return false
		}
	}
	rel, recursive := w.relevant(path)
	if !rel {
		return false
	}
	isDir := false
	if st, err := os.Lstat(path); err == nil && st.IsDir() {
		isDir = true
	}
	if w.ignored(path, isDir) {
		return false
	}
	if isDir && recursive && ev.Has(fsnotify.Create) {
		// A new directory (mkdir, git checkout, a moved tree): watch it and what it holds.
		if err := w.addTree(path); err != nil && w.o.Errors != nil {
			w.o.Errors(err)
		}
	}
	return true
}
