package watch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// run starts w and returns its batches.
func run(t *testing.T, w *Watcher) <-chan Batch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx, func(b Batch) { out <- b })
	}()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
	return out
}

func next(t *testing.T, ch <-chan Batch) Batch {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch")
	}
	return Batch{}
}

func none(t *testing.T, ch <-chan Batch, wait time.Duration) {
	t.Helper()
	select {
	case b := <-ch:
		t.Fatalf("unexpected batch %v", b.Paths)
	case <-time.After(wait):
	}
}

func newWatcher(t *testing.T, o Options) *Watcher {
	t.Helper()
	if o.Quiet == 0 {
		o.Quiet = 50 * time.Millisecond
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveByRename saves like vim and JetBrains editors: write a temporary file, rename it over.
func saveByRename(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp.123"
	write(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileRenameSave(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "Sandboxfile")
	write(t, file, "a")
	write(t, filepath.Join(dir, "other"), "x")
	w := newWatcher(t, Options{})
	if err := w.AddFile(file); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	saveByRename(t, file, "b")
	b := next(t, ch)
	if len(b.Paths) != 1 || b.Paths[0] != file {
		t.Fatalf("batch %v, want just the Sandboxfile", b.Paths)
	}
	// A sibling that is not watched, and the editor's temp file, make no batch.
	write(t, filepath.Join(dir, "other"), "y")
	write(t, filepath.Join(dir, ".Sandboxfile.swp"), "y")
	none(t, ch, 300*time.Millisecond)
}

func TestBurstIsOneBatch(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "Sandboxfile")
	write(t, file, "0")
	w := newWatcher(t, Options{Quiet: 200 * time.Millisecond})
	if err := w.AddFile(file); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	for i := 0; i < 50; i++ {
		saveByRename(t, file, strconv.Itoa(i))
		time.Sleep(10 * time.Millisecond)
	}
	next(t, ch)
	none(t, ch, 500*time.Millisecond)
}

func TestBurstIsCapped(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	write(t, file, "0")
	w := newWatcher(t, Options{Quiet: 100 * time.Millisecond, Max: 300 * time.Millisecond})
	if err := w.AddFile(file); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			write(t, file, strconv.Itoa(i))
			time.Sleep(20 * time.Millisecond) // never quiet for 100 ms
		}
	}()
	defer close(stop)
	next(t, ch) // delivered by the cap, while changes keep coming
}

func TestTreeFollowsNewDirectoriesAndIgnores(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "src", ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t, Options{Ignore: func(p string, isDir bool) bool { return filepath.Ext(p) == ".log" }})
	if err := w.AddTree(filepath.Join(root, "src")); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	write(t, filepath.Join(root, "src", ".git", "index"), "x")
	write(t, filepath.Join(root, "src", "debug.log"), "x")
	none(t, ch, 300*time.Millisecond)

	sub := filepath.Join(root, "src", "pkg", "deep")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	next(t, ch) // the new directories themselves
	write(t, filepath.Join(sub, "main.go"), "package main")
	b := next(t, ch)
	if len(b.Paths) != 1 || b.Paths[0] != filepath.Join(sub, "main.go") {
		t.Fatalf("batch %v", b.Paths)
	}
}

func TestEditorTemp(t *testing.T) {
	for _, n := range []string{".main.go.swp", "main.go~", "4913", ".#main.go", "#main.go#", "main.go___jb_tmp___", "x.tmp"} {
		if !EditorTemp(n) {
			t.Errorf("%s is an editor temp file", n)
		}
	}
	for _, n := range []string{"main.go", "Sandboxfile", "tmp", "swp.go"} {
		if EditorTemp(n) {
			t.Errorf("%s is not an editor temp file", n)
		}
	}
}

func TestGlobSeesNewFiles(t *testing.T) {
	dir := t.TempDir()
	w := newWatcher(t, Options{})
	if err := w.AddGlob(filepath.Join(dir, "*.auto.sbxvars.hcl")); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	write(t, filepath.Join(dir, "other.hcl"), "x = 1")
	none(t, ch, 300*time.Millisecond)
	file := filepath.Join(dir, "dev.auto.sbxvars.hcl")
	write(t, file, "x = 1")
	if b := next(t, ch); len(b.Paths) != 1 || b.Paths[0] != file {
		t.Fatalf("batch %v", b.Paths)
	}
}

// A change that arrives while a batch is being handled is announced once and delivered as
// the next batch when the handler returns, never lost and never handled concurrently.
func TestChangeDuringHandlingIsQueued(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "Sandboxfile")
	write(t, file, "a")
	queued := make(chan string, 10)
	w := newWatcher(t, Options{Queued: func(p string) { queued <- p }})
	if err := w.AddFile(file); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	handling := make(chan struct{})
	release := make(chan struct{})
	batches := make(chan Batch, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		_ = w.Run(ctx, func(b Batch) {
			if first {
				first = false
				close(handling)
				<-release
			}
			batches <- b
		})
	}()
	t.Cleanup(func() { cancel(); <-done; w.Close() })

	write(t, file, "b")
	<-handling // the first batch is being handled
	write(t, file, "c")
	select {
	case p := <-queued:
		if p != file {
			t.Fatalf("queued %s, want %s", p, file)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a change during handling was not announced as queued")
	}
	write(t, file, "d") // still the same queued batch: announced once
	none(t, batches, 200*time.Millisecond)
	close(release)
	if b := next(t, batches); len(b.Paths) != 1 {
		t.Fatalf("first batch %v", b.Paths)
	}
	if b := next(t, batches); len(b.Paths) != 1 || b.Paths[0] != file {
		t.Fatalf("queued batch %v", b.Paths)
	}
	select {
	case p := <-queued:
		t.Fatalf("announced twice: %s", p)
	default:
	}
}

// touch(1) of a watched file is a change (Tilt users restart that way).
func TestTouchIsAChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	write(t, file, "package main")
	w := newWatcher(t, Options{})
	if err := w.AddTree(dir); err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if b := next(t, ch); len(b.Paths) != 1 || b.Paths[0] != file {
		t.Fatalf("batch %v", b.Paths)
	}
}
