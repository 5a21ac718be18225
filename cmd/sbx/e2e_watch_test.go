package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

const watchProject = `
project { driver = "ns" }

sandbox "api" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo api LEVEL=$LEVEL; exec sleep 3600"]
  env     = { LEVEL = "info" }
  network { scope = "none" }
}

sandbox "web" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo web up; exec sleep 3600"]
  network { scope = "none" }
  watch {
    paths  = ["./src"]
    ignore = ["**/*.log"]
  }
}
`

// watchProc is a running sbx up --watch with its output collected.
type watchProc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (w *watchProc) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

func (w *watchProc) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

func (p *project) startWatch(args ...string) *watchProc {
	p.t.Helper()
	w := &watchProc{}
	w.cmd = execSbx(p, append([]string{"up", "--watch", "--debounce", "200ms"}, args...)...)
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGINT)
		_ = w.cmd.Wait()
		if p.t.Failed() {
			p.t.Logf("watch output:\n%s", w.text())
		}
	})
	return w
}

// execSbx prepares sbx to run in p with the ns driver, without starting it.
func execSbx(p *project, args ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, append([]string{"-C", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER=ns")
	return cmd
}

// saveAtomically writes the Sandboxfile the way editors do: a temporary file renamed over it.
func (p *project) saveAtomically(src string) {
	p.t.Helper()
	src = strings.ReplaceAll(src, "IMAGE", "oci-layout:"+p.image+":latest")
	tmp := filepath.Join(p.dir, ".Sandboxfile.tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, "Sandboxfile")); err != nil {
		p.t.Fatal(err)
	}
}

func TestE2EWatch(t *testing.T) {
	p := newProject(t, watchProject)
	if err := os.MkdirAll(filepath.Join(p.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := p.startWatch()
	p.eventually("first apply", func() bool { return strings.Contains(w.text(), "generation 1 live") })
	p.eventually("consoles streamed", func() bool {
		return strings.Contains(w.text(), "api | api LEVEL=info") && strings.Contains(w.text(), "web | web up")
	})
	pids := func() (int, int) { r := p.ps(); return r["api"].Pid, r["web"].Pid }
	api1, web1 := pids()

	// A second watcher on the same project is refused.
	if r := p.sbx("up", "--watch"); r.code == 0 || !strings.Contains(r.stderr, "already running") {
		t.Errorf("second watcher: exit %d, %s", r.code, r.stderr)
	}

	// An env edit saved atomically replaces api, and only api.
	p.saveAtomically(strings.Replace(watchProject, `LEVEL = "info"`, `LEVEL = "debug"`, 1))
	p.eventually("generation 2", func() bool { return strings.Contains(w.text(), "generation 2 live: replaced api (env.LEVEL)") })
	api2, web2 := pids()
	if api2 == api1 || web2 != web1 {
		t.Errorf("pids api %d->%d web %d->%d: want only api replaced", api1, api2, web1, web2)
	}
	p.eventually("new console line", func() bool { return strings.Contains(w.text(), "api | api LEVEL=debug") })

	// A burst of 50 saves within a second is one apply.
	applies := strings.Count(w.text(), "changed: applying")
	for i := 0; i < 50; i++ {
		level := "debug"
		if i == 49 {
			level = "warn"
		}
		p.saveAtomically(strings.Replace(watchProject, `LEVEL = "info"`, `LEVEL = "`+level+`"`, 1) + "\n# save " + strings.Repeat("x", i) + "\n")
		time.Sleep(15 * time.Millisecond)
	}
	p.eventually("generation 3", func() bool { return strings.Contains(w.text(), "generation 3 live: replaced api (env.LEVEL)") })
	time.Sleep(600 * time.Millisecond)
	if n := strings.Count(w.text(), "changed: applying") - applies; n != 1 {
		t.Errorf("a burst of 50 saves made %d applies, want 1", n)
	}

	// A broken save changes nothing and says why; the fix applies.
	api3, web3 := pids()
	p.saveAtomically(watchProject + "\nsandbox \"broken\" {\n  image = \n}\n")
	p.eventually("diagnostics", func() bool { return strings.Contains(w.text(), "the Sandboxfile has errors") })
	if a, b := pids(); a != api3 || b != web3 {
		t.Errorf("a broken save restarted sandboxes")
	}
	if r := p.ps(); r["api"].State != "running" || r["web"].State != "running" {
		t.Errorf("after a broken save: %+v", r)
	}
	p.saveAtomically(watchProject)
	p.eventually("generation 4", func() bool { return strings.Contains(w.text(), "generation 4 live: replaced api (env.LEVEL)") })

	// A change under web's watch path restarts web only; an ignored file restarts nothing.
	api4, web4 := pids()
	if err := os.WriteFile(filepath.Join(p.dir, "src", "debug.log"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "src", "main.go"), []byte("package main"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.eventually("generation 5", func() bool { return strings.Contains(w.text(), "generation 5 live: restarted web") })
	if a, b := pids(); a != api4 || b == web4 {
		t.Errorf("watch path change: api %d->%d web %d->%d, want only web restarted", api4, a, web4, b)
	}
	if strings.Contains(w.text(), "debug.log") {
		t.Errorf("an ignored file triggered a restart")
	}

	// A new auto variable file is read at once.
	if err := os.WriteFile(filepath.Join(p.dir, "dev.auto.sbxvars.hcl"), []byte("unused = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.eventually("auto var file", func() bool { return strings.Contains(w.text(), "dev.auto.sbxvars.hcl changed: applying") })

	// Ctrl-C stops watching and leaves the sandboxes running.
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("watch exit: %v", err)
	}
	if !strings.Contains(w.text(), "the sandboxes keep running") {
		t.Errorf("no goodbye line")
	}
	if r := p.ps(); r["api"].State != "running" || r["web"].State != "running" {
		t.Errorf("after Ctrl-C: %+v", r)
	}
}

func TestE2EWatchDownOnExit(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "a" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
}
`)
	w := p.startWatch("--down-on-exit")
	p.eventually("first apply", func() bool { return strings.Contains(w.text(), "generation 1 live") })
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("watch exit: %v\n%s", err, w.text())
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("--down-on-exit left sandboxes: %+v", rows)
	}
}

const watchReadyProject = `
project { driver = "ns" }

sandbox "api" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo api MODE=$MODE; exec sleep 3600"]
  env     = { MODE = "good" }
  network { scope = "none" }
  ready {
    log     = "MODE=good"
    timeout = "4s"
  }
}
`

// A replace whose sandbox never becomes ready is a failed generation, not a live one; a
// save during that apply is announced as queued and applied after it, as the next generation.
func TestE2EWatchFailedAndQueued(t *testing.T) {
	p := newProject(t, watchReadyProject)
	w := p.startWatch()
	p.eventually("first apply", func() bool { return strings.Contains(w.text(), "generation 1 live: created api") })

	p.saveAtomically(strings.Replace(watchReadyProject, `MODE = "good"`, `MODE = "bad"`, 1))
	p.eventually("apply of the bad save", func() bool { return strings.Contains(w.text(), "api MODE=bad") })
	p.saveAtomically(watchReadyProject)
	p.eventually("queued", func() bool {
		return strings.Contains(w.text(), "Sandboxfile changed: queued: applying after the current one")
	})
	p.eventually("generation 2 failed", func() bool {
		return strings.Contains(w.text(), "generation 2 failed: api: ")
	})
	if strings.Contains(w.text(), "generation 2 live") {
		t.Errorf("an unready replace was reported live")
	}
	p.eventually("generation 3 live", func() bool {
		return strings.Contains(w.text(), "generation 3 live: replaced api (env.MODE)")
	})
	if r := p.ps(); r["api"].State != "ready" && r["api"].State != "running" {
		t.Errorf("after the queued fix: %+v", r["api"])
	}
}

// On a terminal, up --watch keeps a status line at the bottom ("generation 1 live · 1 ready ·
// watching N files"); touching a watched file restarts its sandbox; deleting the Sandboxfile
// says the sandboxes keep running.
func TestE2EWatchTerminal(t *testing.T) {
	p := newProject(t, watchProject)
	if err := os.MkdirAll(filepath.Join(p.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "src", "main.go"), []byte("package main"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := execSbx(p, "up", "--watch", "--debounce", "200ms")
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	w := &watchProc{cmd: cmd}
	go func() { _, _ = io.Copy(w, f) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			t.Logf("watch output:\n%q", w.text())
		}
	})
	p.eventually("status line", func() bool {
		return strings.Contains(w.text(), "\r\x1b[2K[sbx] generation 1 live · 2 running · watching ")
	})
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(p.dir, "src", "main.go"), later, later); err != nil {
		t.Fatal(err)
	}
	p.eventually("touch restarts web", func() bool { return strings.Contains(w.text(), "generation 2 live: restarted web") })
	if err := os.Remove(filepath.Join(p.dir, "Sandboxfile")); err != nil {
		t.Fatal(err)
	}
	p.eventually("deleted Sandboxfile", func() bool {
		return strings.Contains(w.text(), "Sandboxfile was deleted: the sandboxes keep running")
	})
	if r := p.ps(); r["api"].State != "running" || r["web"].State != "running" {
		t.Errorf("after the Sandboxfile was deleted: %+v", r)
	}
}
