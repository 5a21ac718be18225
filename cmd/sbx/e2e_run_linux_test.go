package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/nsnet"
)

// testRun runs one-off sandboxes from a declared sandbox (in a network group, with a static
// address and a mount) while the declared one runs: the command's output, stdin and exit
// code, the shared mount, the group reached by name from the one-off's own address, a PTY,
// nothing left behind; then an ad-hoc one of an image, and an unknown sandbox.
func testRun(t *testing.T, driver string) {
	n := os.Getpid() % 100
	if driver == "krun" {
		n += 100
	}
	p := newProject(t, fmt.Sprintf(`
project { name = "e2erun%d" }

network "lan" {
  subnet = "10.98.%d.0/24"
}

sandbox "db" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
}

sandbox "web" {
  image      = "IMAGE"
  command    = ["httpd", "-f", "-p", "8080", "-h", "/data"]
  depends_on = [sandbox.db]
  env     = { FOO = "from-the-sandboxfile" }
  mount {
    source = "./data"
    target = "/data"
  }
  network {
    scope = "group"
    group = network.lan
    ip    = "10.98.%d.10"
  }
}
`, n, n, n))
	if err := os.MkdirAll(filepath.Join(p.dir, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "data", "index.html"), []byte("declared web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	execDriverEnv(t, driver)
	t.Cleanup(func() {
		// What a one-off that went wrong left of the project's network, once down is done.
		p.sbxDriver(driver, "down")
		_ = nsnet.TeardownProject(context.Background(), runtime.ProjectID(fmt.Sprintf("e2erun%d", n), p.dir))
	})
	if r := p.sbxDriver(driver, "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	pid := p.ps()["web"].Pid
	sandboxes := func() []string {
		entries, _ := os.ReadDir(filepath.Join(p.dir, ".sbx", "sandboxes"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	r := p.sbxDriver(driver, "run", "web", "--", "sh", "-c",
		`echo "$FOO"; echo one-off > /data/from-run; ip -4 -o addr show eth0 | grep -o '10[.0-9]*/' ; wget -q -O - http://web:8080/; exit 9`)
	if r.code != 9 || r.stderr != "" {
		t.Errorf("run: exit code %d, want 9 and nothing on stderr\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"from-the-sandboxfile\n", fmt.Sprintf("10.98.%d.", n), "declared web\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run output lacks %q:\n%s\n%s", want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, fmt.Sprintf("10.98.%d.10/", n)) {
		t.Errorf("the one-off took the declared sandbox's address:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(p.dir, "data", "from-run")); err != nil || string(b) != "one-off\n" {
		t.Errorf("the one-off's write to the shared mount: %q %v", b, err)
	}
	if r := p.sbxStdin(driver, "typed in\n", "run", "web", "--", "cat"); r.code != 0 || r.stdout != "typed in\n" {
		t.Errorf("run with stdin: %d %q %s", r.code, r.stdout, r.stderr)
	}

	s := startPTY(t, p, driver, 33, 90, "run", "web", "--", "sh")
	s.send("stty size\r")
	s.expect("33 90")
	s.send("exit 3\r")
	if code := s.wait(); code != 3 {
		t.Errorf("run on a terminal: exit code %d, want 3", code)
	}
	s.checkRestored()

	if row := p.ps()["web"]; row.Pid != pid || row.State != "running" {
		t.Errorf("the declared sandbox did not keep running: %+v", row)
	}
	if names := sandboxes(); strings.Join(names, " ") != "db web" {
		t.Errorf("one-offs left directories: %v", names)
	}
	for _, proc := range processesOf(p.dir) {
		if strings.Contains(proc, "-run-") {
			t.Errorf("a one-off's process is left: %s", proc)
		}
	}

	// A one-off whose sbx is killed: the next sbx run cleans up after it, network included.
	netBefore, err := nsnet.List(context.Background(), runtime.ProjectID(fmt.Sprintf("e2erun%d", n), p.dir))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-C", p.dir, "run", "web", "--", "sh", "-c", "echo started; exec sleep 60")
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER="+driver)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 8)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "started\n" {
		t.Fatalf("the one-off's first output: %q %v", line, err)
	}
	if names := sandboxes(); len(names) != 3 {
		t.Errorf("a running one-off's directory: %v", names)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if r := p.sbxDriver(driver, "run", "web", "--", "true"); r.code != 0 {
		t.Errorf("run after a killed one: %d %s", r.code, r.stderr)
	}
	if names := sandboxes(); strings.Join(names, " ") != "db web" {
		t.Errorf("the killed one-off's directory is left: %v", names)
	}
	netAfter, err := nsnet.List(context.Background(), runtime.ProjectID(fmt.Sprintf("e2erun%d", n), p.dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(netAfter.Links) != len(netBefore.Links) || len(netAfter.Rules) != len(netBefore.Rules) || len(netAfter.NetNS) != len(netBefore.NetNS) {
		t.Errorf("the killed one-off's network is left:\nbefore %+v\nafter  %+v", netBefore, netAfter)
	}
	p.eventually("the killed one-off's processes to go", func() bool {
		for _, proc := range processesOf(p.dir) {
			if strings.Contains(proc, "-run-") {
				return false
			}
		}
		return true
	})

	// A dependency that does not run is a warning: the one-off runs all the same.
	if r := p.sbxDriver(driver, "stop", "db"); r.code != 0 {
		t.Fatalf("stop db: %s", r.stderr)
	}
	r = p.sbxDriver(driver, "run", "web", "--", "true")
	if r.code != 0 || r.stderr != "Warning: web depends on db, which is not running: 'sbx up db' starts it\n" {
		t.Errorf("run with a stopped dependency: %d %q", r.code, r.stderr)
	}

	// An image alone, outside any group.
	r = p.sbxDriver(driver, "run", "--image", "oci-layout:"+p.image+":latest", "--", "sh", "-c", "echo ad-hoc; exit 4")
	if r.code != 4 || r.stdout != "ad-hoc\n" {
		t.Errorf("run --image: %d %q %s", r.code, r.stdout, r.stderr)
	}

	r = p.sbxDriver(driver, "run", "nope", "--", "true")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `no sandbox "nope" in the Sandboxfile (it declares db, web)`) {
		t.Errorf("run of an unknown sandbox: %d %q", r.code, r.stderr)
	}
	if names := sandboxes(); strings.Join(names, " ") != "db web" {
		t.Errorf("one-offs left directories: %v", names)
	}
}
