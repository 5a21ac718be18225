package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/sbx-dev/sbx/runtime/state"
	"golang.org/x/sys/unix"
)

const hostileProject = `
project { driver = "ns" }

sandbox "web" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo web up; exec sleep 3600"]
  network { scope = "none" }
}
`

// victim is a directory outside the project holding a file a hostile checkout aims at.
func victim(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "important")
	if err := os.WriteFile(file, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func intact(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "keep me\n" {
		t.Errorf("%s was touched: %q, %v", file, b, err)
	}
}

// A checkout may commit a .sbx/ of symlinks: sbx refuses to use them, and never writes to
// or deletes what they point at.
func TestE2EHostileStateDirectory(t *testing.T) {
	t.Run(".sbx is a symlink", func(t *testing.T) {
		p := newProject(t, hostileProject)
		vdir, vfile := victim(t)
		if err := os.Symlink(vdir, filepath.Join(p.dir, ".sbx")); err != nil {
			t.Fatal(err)
		}
		r := p.sbx("up")
		if r.code == 0 || !strings.Contains(r.stderr, ".sbx is a symlink") || !strings.Contains(r.stderr, "remove it") {
			t.Errorf("up over a symlinked .sbx: exit %d\n%s", r.code, r.stderr)
		}
		intact(t, vfile)
		if entries, _ := os.ReadDir(vdir); len(entries) != 1 {
			t.Errorf("sbx wrote into the symlink's target: %v", entries)
		}
	})
	t.Run("console.log is a symlink", func(t *testing.T) {
		p := newProject(t, hostileProject)
		_, vfile := victim(t)
		sdir := filepath.Join(p.dir, ".sbx", "sandboxes", "web")
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(vfile, filepath.Join(sdir, "console.log")); err != nil {
			t.Fatal(err)
		}
		r := p.sbx("up")
		if r.code == 0 {
			t.Errorf("up with a symlinked console.log succeeded:\n%s", r.stdout)
		}
		intact(t, vfile)
		p.sbx("down")
	})
	t.Run("down --purge through a symlinked sandboxes directory", func(t *testing.T) {
		p := newProject(t, hostileProject)
		vdir, vfile := victim(t)
		p.must("up")
		// Swap the sandboxes directory for a symlink to the victim, holding a "web" of its own.
		sbs := filepath.Join(p.dir, ".sbx", "sandboxes")
		if err := os.Rename(sbs, sbs+".real"); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(vdir, "web"), 0o755); err != nil {
			t.Fatal(err)
		}
		inWeb := filepath.Join(vdir, "web", "important")
		if err := os.WriteFile(inWeb, []byte("keep me\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(vdir, sbs); err != nil {
			t.Fatal(err)
		}
		r := p.sbx("down", "--purge")
		intact(t, vfile)
		intact(t, inWeb)
		if r.code == 0 {
			t.Errorf("down --purge through a symlink reported success:\n%s", r.stdout)
		}
		if rows := p.ps(); rows["web"].State == "running" {
			t.Errorf("web still running after down: %+v", rows["web"])
		}
		_ = os.Remove(sbs)
		_ = os.Rename(sbs+".real", sbs)
		p.sbx("down", "--purge")
	})
	t.Run(".sbx is private", func(t *testing.T) {
		p := newProject(t, hostileProject)
		p.must("up")
		defer p.sbx("down")
		for _, d := range []string{".sbx", ".sbx/sandboxes", ".sbx/sandboxes/web", ".sbx/sandboxes/web/rw"} {
			fi, err := os.Lstat(filepath.Join(p.dir, d))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s is %v, want 0700", d, fi.Mode().Perm())
			}
		}
	})
}

// A down that starts while an up holds the lock waits for it, then stops what it started.
func TestE2EDownWaitsForUp(t *testing.T) {
	p := newProject(t, hostileProject)
	up := execSbx(p, "up")
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	lockFile := filepath.Join(p.dir, ".sbx", "state.lock")
	p.eventually("up holds the lock", func() bool {
		b, _ := os.ReadFile(lockFile)
		return strings.Contains(string(b), `"pid"`)
	})
	r := p.sbx("down")
	if err := up.Wait(); err != nil {
		t.Fatalf("up: %v", err)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "web: stopped and removed") {
		t.Errorf("down during up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("left running after down: %+v", rows)
	}
}

// What a sandbox prints cannot drive the user's terminal: sbx logs on a terminal shows
// escapes and carriage returns as text; --raw and a pipe pass them through.
func TestE2ELogsNeutraliseEscapes(t *testing.T) {
	p := newProject(t, strings.Replace(hostileProject,
		`["sh", "-c", "echo web up; exec sleep 3600"]`,
		`["sh", "-c", "printf 'title \\033]0;pwned\\007 clear \\033[2J x\\r[sbx] forged\\n'; exec sleep 3600"]`, 1))
	p.must("up")
	defer p.sbx("down")
	onTerminal := func(args ...string) string {
		cmd := execSbx(p, args...)
		f, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out bytes.Buffer
		_, _ = io.Copy(&out, f) // ends with EIO when sbx exits
		_ = cmd.Wait()
		return out.String()
	}
	p.eventually("the line is logged", func() bool { return strings.Contains(p.must("logs", "web"), "forged") })

	got := onTerminal("logs", "web")
	if strings.ContainsRune(got, 0x1b) || strings.ContainsRune(got, 0x07) {
		t.Errorf("escapes reached the terminal: %q", got)
	}
	if !strings.Contains(got, `title \x1b]0;pwned\x07 clear \x1b[2J x\r[sbx] forged`) {
		t.Errorf("escaped line not shown: %q", got)
	}
	if raw := onTerminal("logs", "--raw", "web"); !strings.Contains(raw, "\x1b]0;pwned\x07") {
		t.Errorf("--raw did not pass the escapes through: %q", raw)
	}
	if piped := p.must("logs", "web"); !strings.Contains(piped, "\x1b[2J") {
		t.Errorf("a pipe got altered output: %q", piped)
	}
}

// rm -rf .sbx while a sandbox runs: up refuses a second copy over the same writable layer,
// down finds and stops the lost one, and up then works again.
func TestE2ELostStateDirectory(t *testing.T) {
	p := newProject(t, hostileProject)
	p.must("up")
	pid := p.ps()["web"].Pid
	start, err := state.ProcessStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(p.dir, ".sbx")); err != nil {
		t.Fatal(err)
	}
	r := p.sbx("up")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "lost track of it") {
		t.Errorf("up over a lost sandbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !state.Alive(pid, start) {
		t.Fatalf("the lost sandbox's supervisor %d died", pid)
	}
	r = p.sbx("down")
	if r.code != 0 || !strings.Contains(r.stdout, "web: stopped (it ran without a record in .sbx/)") {
		t.Errorf("down of a lost sandbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if state.Alive(pid, start) {
		t.Errorf("supervisor %d still alive after down", pid)
	}
	p.must("up")
	if rows := p.ps(); rows["web"].State != "running" {
		t.Errorf("up after down: %+v", rows["web"])
	}
	p.must("down")
}

// Two projects called "app" in two directories share nothing: each serves its own port, and
// down in one leaves the other running and reachable.
func TestE2EProjectsWithTheSameName(t *testing.T) {
	src := `
project {
  name   = "app"
  driver = "ns"
}
network "lan" {
  subnet = "10.98.%d.0/24"
}
sandbox "web" {
  image   = "IMAGE"
  command = ["httpd", "-f", "-p", "8080", "-h", "/srv"]
  mount {
    source    = "./site"
    target    = "/srv"
    read_only = true
  }
  port {
    host  = %d
    guest = 8080
  }
  network {
    scope = "group"
    group = network.lan
  }
  ready { tcp = 8080 }
}
`
	var projects []*project
	var ports []int
	for i, body := range []string{"one\n", "two\n"} {
		port := freePort(t)
		p := newProject(t, fmt.Sprintf(src, 11+i, port))
		if err := os.MkdirAll(filepath.Join(p.dir, "site"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, "site", "index.html"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p.must("up")
		defer p.sbx("down")
		projects, ports = append(projects, p), append(ports, port)
	}
	for i, want := range []string{"one\n", "two\n"} {
		if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", ports[i])); err != nil || body != want {
			t.Errorf("project %d serves %q, %v; want %q", i+1, body, err, want)
		}
	}
	projects[0].must("down")
	if rows := projects[1].ps(); rows["web"].State != "ready" && rows["web"].State != "running" {
		t.Errorf("the other project's web after down: %+v", rows["web"])
	}
	if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", ports[1])); err != nil || body != "two\n" {
		t.Errorf("the other project after down: %q, %v", body, err)
	}
}

// A full disk does not lock the user out: with no byte left where the project lives, stop,
// restart and down still work (nothing they need is written first).
func TestE2EFullDisk(t *testing.T) {
	bin, image := e2eSetup(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0755"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	p := &project{t: t, dir: dir, bin: bin, image: image, home: t.TempDir()}
	p.write(hostileProject)
	t.Cleanup(func() { p.sbx("down") })
	p.must("up")
	// Fill the file system to the last byte.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	f.Close()
	// Starting needs space: it is refused at once, saying so.
	if r := p.sbx("restart", "web"); r.code == 0 || !strings.Contains(r.stderr, "no space left on the device") {
		t.Errorf("restart on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := p.sbx("stop"); r.code != 0 || !strings.Contains(r.stdout, "web: stopped") {
		t.Errorf("stop on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := p.sbx("down"); r.code != 0 {
		t.Errorf("down on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("after down on a full disk: %+v", rows)
	}
}
