package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// standinLib builds the checking stand-in libkrun (testdata/krun) with gcc.
func standinLib(t testing.TB) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to build the stand-in libkrun")
	}
	out := filepath.Join(t.TempDir(), "libkrun.so.1")
	if b, err := exec.Command(gcc, "-Wall", "-shared", "-fPIC", "-o", out, "../../testdata/krun/libkrun_standin.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

// krunCalls reads the stand-in's call log: function name -> the arguments of its calls.
func krunCalls(t *testing.T, path string) map[string][]map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := map[string][]map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c map[string]any
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("call log line %q: %v", sc.Text(), err)
		}
		name, _ := c["fn"].(string)
		if name == "" {
			name, _ = c["func"].(string)
		}
		calls[name] = append(calls[name], c)
	}
	return calls
}

func TestE2EKrunDriverWithStandin(t *testing.T) {
	lib := standinLib(t)
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("the krun driver's preflight needs /dev/kvm")
	}
	p := newProject(t, `
project { driver = "krun" }

network "net" {
  subnet = "10.91.0.0/24"
}

sandbox "vm" {
  image   = "IMAGE"
  cpus    = 2
  memory  = "256MiB"
  command = ["httpd", "-f", "-p", "8080"]
  workdir = "/srv"
  env     = { GREETING = "hi" }
  rlimits = { NOFILE = "512:1024" }

  mount {
    source    = "."
    target    = "/src"
    read_only = true
  }

  port {
    host  = 18081
    guest = 8080
  }

  network {
    scope = "group"
    group = network.net
    ip    = "10.91.0.5"
  }

  ready {
    log = "guest started"
  }
}
`)
	calls := filepath.Join(t.TempDir(), "calls.jsonl")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(calls)
			t.Logf("libkrun calls:\n%s", b)
		}
	})
	t.Setenv("SBX_LIBKRUN", lib)
	t.Setenv("KRUN_STANDIN_LOG", calls)

	r := p.sbxDriver("krun", "up")
	if r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	rows := p.ps()
	if rows["vm"].State != "ready" {
		t.Fatalf("ps: %+v", rows)
	}
	if logs := p.must("logs", "vm"); !strings.Contains(logs, "standin: guest started /bin/sh") {
		t.Errorf("console log:\n%s", logs)
	}
	got := krunCalls(t, calls)
	for _, fn := range []string{"krun_create_ctx", "krun_set_vm_config", "krun_set_overlayfs_root", "krun_add_virtiofs",
		"krun_set_port_map", "krun_set_tsi_scope", "krun_set_rlimits", "krun_set_workdir", "krun_set_exec",
		"krun_set_console_output", "krun_start_enter"} {
		if len(got[fn]) != 1 {
			t.Errorf("%s called %d times, want once", fn, len(got[fn]))
		}
	}
	raw, _ := os.ReadFile(calls)
	for _, want := range []string{`"8080"`, `18081:8080`, `10.91.0.5`, `10.91.0.0/24`, `GREETING=hi`, `/srv`, `7=512:1024`, "httpd"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("call log lacks %s:\n%s", want, raw)
		}
	}

	r = p.sbxDriver("krun", "down")
	if r.code != 0 {
		t.Fatalf("down: %s\n%s", r.stdout, r.stderr)
	}
	if procs := processesOf(p.dir); len(procs) > 0 {
		t.Errorf("processes left after down:\n%s", strings.Join(procs, "\n"))
	}
}

func TestE2EKrunRefusesAnotherUser(t *testing.T) {
	lib := standinLib(t)
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("the krun driver's preflight needs /dev/kvm")
	}
	p := newProject(t, `
sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  user    = "nobody"
  network { scope = "any" }
}
`)
	t.Setenv("SBX_LIBKRUN", lib)
	r := p.sbxDriver("krun", "up")
	if r.code != 1 || !strings.Contains(r.stderr, `cannot run the workload as user "nobody"`) {
		t.Fatalf("up: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("a refused sandbox is in the state: %+v", rows)
	}
}

// TestE2EDriverSwitchReplaces moves a sandbox from the ns driver to the krun driver (the
// stand-in): the plan names the driver change and up replaces it.
func TestE2EDriverSwitchReplaces(t *testing.T) {
	lib := standinLib(t)
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("the krun driver's preflight needs /dev/kvm")
	}
	p := newProject(t, `
sandbox "s" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "any" }
}
`)
	t.Setenv("SBX_LIBKRUN", lib)
	p.must("up") // ns, from the test helper
	if r := p.sbxDriver("ns", "plan"); !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan on the same driver:\n%s", r.stdout)
	}
	r := p.sbxDriver("krun", "up")
	if r.code != 0 || !strings.Contains(r.stdout, `driver: "ns" → "krun"`) {
		t.Fatalf("up --driver krun: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if logs := p.must("logs", "s"); !strings.Contains(logs, "standin: guest started") {
		t.Errorf("not running on the stand-in:\n%s", logs)
	}
}

// TestE2EReplaceThatCannotRunKeepsTheOld edits a running sandbox into a spec the driver
// refuses: up fails before stopping anything, and the old sandbox keeps running.
func TestE2EReplaceThatCannotRunKeepsTheOld(t *testing.T) {
	lib := standinLib(t)
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("the krun driver's preflight needs /dev/kvm")
	}
	src := `
sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "any" }
}
`
	p := newProject(t, src)
	t.Setenv("SBX_LIBKRUN", lib)
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s %s", r.stdout, r.stderr)
	}
	pid := p.ps()["vm"].Pid
	p.write(strings.Replace(src, `command = ["sleep", "3600"]`, `command = ["sleep", "3600"]
  user    = "nobody"`, 1))
	if r := p.sbxDriver("krun", "up"); r.code != 1 || !strings.Contains(r.stderr, "cannot run the workload as user") {
		t.Fatalf("up: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if row := p.ps()["vm"]; row.Pid != pid || row.State != "running" {
		t.Errorf("the old sandbox did not keep running: %+v (pid was %d)", row, pid)
	}
}
