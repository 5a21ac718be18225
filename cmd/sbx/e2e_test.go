package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests drive the real sbx binary: real supervisors, real namespaces (as root),
// images built from busybox-static into an OCI layout.

var (
	binOnce  sync.Once
	binPath  string
	binErr   error
	imgOnce  sync.Once
	e2eImage string
	imgErr   error
)

// sbxBinary builds sbx once per test binary, as make build does: static (no cgo), stripped,
// with sbx-init and sbx-convert next to it.
func sbxBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbx-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sbx")
		// sbx and its helpers side by side, as make install puts them.
		for _, b := range []struct{ out, pkg string }{{binPath, "."}, {filepath.Join(dir, "sbx-init"), "../sbx-init"}, {filepath.Join(dir, "sbx-convert"), "../sbx-convert"}} {
			build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", b.out, b.pkg)
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// e2eSetup builds sbx and the busybox image once per test binary, for tests that run
// sandboxes (as root).
func e2eSetup(t testing.TB) (bin, image string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests of the ns driver need root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox-static (/bin/busybox)")
	}
	bin = sbxBinary(t)
	imgOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbx-image-")
		if err != nil {
			imgErr = err
			return
		}
		e2eImage = filepath.Join(dir, "image")
		if out, err := exec.Command("go", "run", "../../examples/hello/mkimage", "-out", e2eImage).CombinedOutput(); err != nil {
			imgErr = fmt.Errorf("mkimage: %v\n%s", err, out)
		}
	})
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return bin, e2eImage
}

// project is a temporary project directory with its own image store.
type project struct {
	t     testing.TB
	dir   string
	bin   string
	image string
	home  string
}

func newProject(t testing.TB, sandboxfile string) *project {
	bin, image := e2eSetup(t)
	p := &project{t: t, dir: t.TempDir(), bin: bin, image: image, home: t.TempDir()}
	p.write(sandboxfile)
	t.Cleanup(func() {
		// Whatever a test left running goes, so tests never leak processes into each other.
		p.sbx("down", "--purge")
	})
	return p
}

// write replaces the Sandboxfile; IMAGE stands for the test image reference.
func (p *project) write(sandboxfile string) {
	p.t.Helper()
	src := strings.ReplaceAll(sandboxfile, "IMAGE", "oci-layout:"+p.image+":latest")
	if err := os.WriteFile(filepath.Join(p.dir, "Sandboxfile"), []byte(src), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (p *project) sbx(args ...string) result {
	p.t.Helper()
	return p.sbxDriver("ns", args...)
}

// sbxDriver runs sbx with SBX_DRIVER set to driver.
func (p *project) sbxDriver(driver string, args ...string) result {
	p.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"-C", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER="+driver)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("sbx %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// must runs sbx and fails the test on a non-zero exit.
func (p *project) must(args ...string) string {
	p.t.Helper()
	r := p.sbx(args...)
	if r.code != 0 {
		p.t.Fatalf("sbx %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (p *project) ps() map[string]psRow {
	p.t.Helper()
	var rows []psRow
	if err := json.Unmarshal([]byte(p.must("ps", "--json")), &rows); err != nil {
		p.t.Fatal(err)
	}
	out := map[string]psRow{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

// eventually polls cond for up to 30 s.
func (p *project) eventually(what string, cond func() bool) {
	p.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("timed out waiting for %s", what)
}

// planJSON returns sandbox -> action of `sbx plan --json`.
func (p *project) planActions() map[string]string {
	p.t.Helper()
	var plan struct {
		Steps []struct {
			Sandbox string `json:"sandbox"`
			Action  string `json:"action"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(p.must("plan", "--json")), &plan); err != nil {
		p.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range plan.Steps {
		out[s.Sandbox] = s.Action
	}
	return out
}

// processesOf lists the pids whose command line mentions dir (supervisors carry their
// sandbox directory) or that run in its sandboxes.
func processesOf(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(dir)) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

const chainProject = `
project {
  name   = "chain"
  driver = "ns"
}

sandbox "db" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo booting; sleep 0.3; echo 'db ready to accept connections'; exec sleep 3600"]
  network { scope = "none" }
  ready {
    log     = "ready to accept connections"
    timeout = "20s"
  }
}

sandbox "cache" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo cache up; exec sleep 3600"]
  network { scope = "none" }
  depends_on = [sandbox.db]
}

sandbox "api" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo api LOG_LEVEL=$LOG_LEVEL; exec sleep 3600"]
  env     = { LOG_LEVEL = "info" }
  network { scope = "none" }
  depends_on = [sandbox.cache]
}
`

func TestE2EUpChainPlanDown(t *testing.T) {
	p := newProject(t, chainProject)
	out := p.must("up")
	if !strings.Contains(out, "Plan: 3 to create") {
		t.Fatalf("up printed:\n%s", out)
	}
	rows := p.ps()
	if rows["db"].State != "ready" || rows["cache"].State != "running" || rows["api"].State != "running" {
		t.Fatalf("ps after up: %+v", rows)
	}
	// Dependencies started first: db's ready line precedes cache's start, which precedes api's.
	if dbReady, cacheUp := rows["db"].Since, rows["cache"].Since; !dbReady.Before(cacheUp) {
		t.Errorf("cache started at %v, before db (%v)", cacheUp, dbReady)
	}
	if out := p.must("plan"); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after up:\n%s", out)
	}
	if out := p.must("up"); !strings.Contains(out, "No changes.") {
		t.Fatalf("second up:\n%s", out)
	}
	logs := p.must("logs", "api")
	if !strings.Contains(logs, "api LOG_LEVEL=info") {
		t.Errorf("logs api:\n%s", logs)
	}

	// An env edit replaces exactly that sandbox.
	p.write(strings.Replace(chainProject, `LOG_LEVEL = "info"`, `LOG_LEVEL = "debug"`, 1))
	if got := p.planActions(); len(got) != 1 || got["api"] != "replace" {
		t.Fatalf("plan after env edit: %v", got)
	}
	oldDB := p.ps()["db"].Pid
	p.must("up")
	rows = p.ps()
	if rows["db"].Pid != oldDB {
		t.Errorf("db was restarted by an edit of api")
	}
	p.eventually("api logs the new level", func() bool {
		return strings.Contains(p.must("logs", "api"), "LOG_LEVEL=debug")
	})

	p.must("down")
	if procs := processesOf(p.dir); len(procs) > 0 {
		t.Errorf("processes left after down:\n%s", strings.Join(procs, "\n"))
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(p.dir)) {
		t.Errorf("mounts left after down:\n%s", b)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/sbx/chain"); len(left) > 0 {
		t.Errorf("cgroups left after down: %v", left)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("ps after down: %v", rows)
	}
}

func TestE2ERestartPolicies(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "flaky" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo attempt; exit 3"]
  network { scope = "none" }
  restart = "on-failure"
}
sandbox "once" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo once; exit 3"]
  network { scope = "none" }
  restart = "no"
}
sandbox "job" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 1; echo job done"]
  network { scope = "none" }
}
`)
	p.sbx("up") // both fail before being ready: exit 1, by design
	p.eventually("flaky restarted", func() bool { return p.ps()["flaky"].Restarts >= 1 })
	// A payload that failed under restart = "no" has exited (with its code), it did not crash.
	p.eventually("once exited", func() bool { return p.ps()["once"].State == "exited" })
	time.Sleep(1500 * time.Millisecond)
	if r := p.ps()["once"]; r.Restarts != 0 || r.Exit != "exit 3" {
		t.Errorf("once under restart=no: %+v", r)
	}
	if n := strings.Count(p.must("logs", "once"), "once\n"); n != 1 {
		t.Errorf("once ran %d times", n)
	}
	// A payload that ends cleanly under restart = "no" is stopped, not crashed; up starts it.
	p.eventually("job stopped", func() bool { return p.ps()["job"].State == "stopped" })
	if out := p.must("plan"); !strings.Contains(out, "> start sandbox.job") || !strings.Contains(out, "stopped") {
		t.Errorf("plan after the job ended:\n%s", out)
	}
}

func TestE2EKilledSupervisorConverges(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "svc" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo up; exec sleep 3600"]
  network { scope = "none" }
}
`)
	p.must("up")
	pid := p.ps()["svc"].Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.eventually("svc crashed", func() bool { return p.ps()["svc"].State == "crashed" })
	if got := p.planActions(); got["svc"] != "start" {
		t.Fatalf("plan after kill -9: %v", got)
	}
	// The payload died with its supervisor (its init had a parent-death signal).
	p.eventually("no orphan payload", func() bool {
		for _, proc := range processesOf(p.dir) {
			if !strings.Contains(proc, "__supervise") {
				return false
			}
		}
		return true
	})
	p.must("up")
	if r := p.ps()["svc"]; r.State != "running" || r.Pid == pid {
		t.Fatalf("after up: %+v", r)
	}
	p.must("down")
	if procs := processesOf(p.dir); len(procs) > 0 {
		t.Errorf("processes left after down:\n%s", strings.Join(procs, "\n"))
	}
}

func TestE2EConcurrentUpsSerialize(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "a" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 0.5; echo ready; exec sleep 3600"]
  network { scope = "none" }
  ready { log = "ready" }
}
`)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.sbx("up")
		}()
	}
	wg.Wait()
	creates := 0
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("a concurrent up failed: %s %s", r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "1 to create") {
			creates++
		}
	}
	if creates != 1 {
		t.Fatalf("%d ups created the sandbox, want exactly 1:\n%s\n---\n%s", creates, results[0].stdout, results[1].stdout)
	}
	if rows := p.ps(); rows["a"].State != "ready" {
		t.Fatalf("ps: %+v", rows)
	}
}

// TestE2EWritableLayer checks what the writable layer survives: restarts, replacements that
// keep the image, stop and start, stop and up; and that down deletes it, as it says.
func TestE2EWritableLayer(t *testing.T) {
	src := `
project { driver = "ns" }
sandbox "keeper" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo x >> /var/marker; echo runs=$(wc -l < /var/marker); exec sleep 3600"]
  env     = { V = "1" }
  network { scope = "none" }
  ready { log = "runs=" }
}
`
	p := newProject(t, src)
	runs := func() string {
		logs := p.must("logs", "keeper")
		i := strings.LastIndex(logs, "runs=")
		if i < 0 {
			t.Fatalf("no runs= line:\n%s", logs)
		}
		return strings.TrimSpace(strings.SplitN(logs[i:], "\n", 2)[0])
	}
	p.must("up")
	if got := runs(); got != "runs=1" {
		t.Fatalf("first up: %s", got)
	}
	p.must("restart", "keeper")
	if got := runs(); got != "runs=2" {
		t.Errorf("after restart: %s", got)
	}
	p.write(strings.Replace(src, `V = "1"`, `V = "2"`, 1))
	p.must("up")
	if got := runs(); got != "runs=3" {
		t.Errorf("after a replace with the same image: %s", got)
	}
	if out := p.must("stop"); !strings.Contains(out, "keeper: stopped (its writable layer is kept") {
		t.Errorf("stop said: %s", out)
	}
	if rows := p.ps(); rows["keeper"].State != "stopped" {
		t.Errorf("after stop: %+v", rows["keeper"])
	}
	if out := p.must("start"); !strings.Contains(out, "keeper: started") {
		t.Errorf("start said: %s", out)
	}
	if got := runs(); got != "runs=4" {
		t.Errorf("after stop and start: %s", got)
	}
	p.must("stop", "keeper")
	p.must("up")
	if got := runs(); got != "runs=5" {
		t.Errorf("after stop and up: %s", got)
	}
	if out := p.must("down"); !strings.Contains(out, "keeper: stopped and removed, with its writable layer and console log") {
		t.Errorf("down said: %s", out)
	}
	p.must("up")
	if got := runs(); got != "runs=1" {
		t.Errorf("after down and up: %s", got)
	}
}
