package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// psLine returns the line of sbx ps text output that starts with the sandbox name.
func psLine(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func TestE2EPsHealthRestartsAndAll(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "web" {
  image   = "IMAGE"
  command = ["sh", "-c", "exec sleep 3600"]
  network { scope = "none" }
}
sandbox "slow" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 3; echo slow is ready; exec sleep 3600"]
  network { scope = "none" }
  ready {
    log     = "slow is ready"
    timeout = "30s"
  }
}
sandbox "deaf" {
  image   = "IMAGE"
  command = ["sh", "-c", "exec sleep 3600"]
  network { scope = "none" }
  ready {
    log     = "^never printed$" # anchored: the supervisor's own note quotes the pattern into the log
    timeout = "1s"
  }
}
sandbox "flaky" {
  image   = "IMAGE"
  command = ["sh", "-c", "exit 3"]
  network { scope = "none" }
  restart = "on-failure"
}
sandbox "job" {
  image   = "IMAGE"
  command = ["true"]
  network { scope = "none" }
}
`)
	// While up waits for slow, ps shows it running with its probe pending.
	up := exec.Command(p.bin, "-C", p.dir, "up")
	up.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER=ns")
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	p.eventually("slow starting", func() bool { return p.ps()["slow"].Health == "starting" })
	line := psLine(p.must("ps"), "slow")
	if f := strings.Fields(line); len(f) < 4 || f[1] != "running" || f[2] != "starting" || !strings.HasSuffix(f[3], "s") {
		t.Errorf("slow while its probe is pending: %q", line)
	}
	_ = up.Wait() // deaf and flaky fail: exit 1 by design

	p.eventually("flaky restarted", func() bool { return p.ps()["flaky"].Restarts >= 1 })
	p.eventually("job stopped", func() bool { return p.ps()["job"].State == "stopped" })
	rows := p.ps()
	if r := rows["slow"]; r.State != "ready" || r.Health != "ready" {
		t.Errorf("slow: %+v", r)
	}
	if r := rows["deaf"]; r.State != "unready" || r.Health != "unready" || r.Reason == "" {
		t.Errorf("deaf: %+v", r)
	}
	if r := rows["web"]; r.State != "running" || r.Health != "" {
		t.Errorf("web: %+v", r)
	}
	if _, ok := rows["job"]; !ok {
		t.Error("ps --json leaves out a stopped sandbox")
	}

	out := p.must("ps")
	for name, want := range map[string][]string{
		"web":  {"running", "-"},
		"slow": {"running", "ready"},
		"deaf": {"running", "unready: " + rows["deaf"].Reason},
	} {
		line := psLine(out, name)
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != want[0] || !strings.Contains(line, " "+want[1]+" ") {
			t.Errorf("%s: %q, want state %s and health %q\n%s", name, line, want[0], want[1], out)
		}
	}
	if line := psLine(out, "flaky"); line != "" && !strings.Contains(line, "(last: exit 3)") {
		t.Errorf("flaky: restarts without the last exit: %q", line)
	}
	if psLine(out, "job") != "" || !strings.Contains(out, "job (stopped)") || !strings.Contains(out, "sbx ps -a") {
		t.Errorf("ps shows the stopped job, or does not say it hides it:\n%s", out)
	}
	all := p.must("ps", "-a")
	if line := psLine(all, "job"); !strings.Contains(line, "stopped (exit 0)") {
		t.Errorf("ps -a: job %q\n%s", line, all)
	}
	if strings.Contains(all, "sbx ps -a") {
		t.Errorf("ps -a still hides something:\n%s", all)
	}
}
