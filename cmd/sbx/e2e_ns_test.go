package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/nsnet"
)

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestE2ENSNetworkAndMounts(t *testing.T) {
	port := freePort(t)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("first version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("e2enet%d", os.Getpid())
	p := newProject(t, fmt.Sprintf(`
project {
  name   = %q
  driver = "ns"
}

network "lan" {
  subnet = "10.98.7.0/24"
}

sandbox "web" {
  image   = "IMAGE"
  command = ["httpd", "-f", "-p", "8080", "-h", "/srv"]
  mount {
    source    = %q
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
    ip    = "10.98.7.10"
  }
  ready {
    tcp = 8080
  }
}

sandbox "peer" {
  image   = "IMAGE"
  workdir = "/work"
  env     = { ROLE = "peer" }
  command = ["sh", "-c", "echo pwd=$(pwd) role=$ROLE host=$(hostname); timeout 5 wget -q -O - http://${sandbox.web.ip}:8080/ && echo peer-reached-web; grep web /etc/hosts; exec sleep 3600"]
  network {
    scope = "group"
    group = network.lan
  }
}

sandbox "loner" {
  image   = "IMAGE"
  command = ["sh", "-c", "timeout 3 wget -q -O - http://10.98.7.10:8080/ && echo loner-reached-web || echo loner-isolated; exec sleep 3600"]
  network {
    scope = "none"
  }
}
`, project, site, port))
	p.must("up")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body, err := httpGet(url)
	if err != nil || body != "first version\n" {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}
	pid := p.ps()["web"].Pid

	// An edit of the mounted file is served at once, without a restart.
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("second version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if body, _ := httpGet(url); body != "second version\n" {
		t.Errorf("after the edit: %q", body)
	}
	if p.ps()["web"].Pid != pid {
		t.Error("web restarted after an edit of a mounted file")
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", p.sbx("logs").stdout)
		}
	})
	p.eventually("peer and loner report", func() bool {
		logs := p.must("logs")
		return strings.Contains(logs, "peer-reached-web") && strings.Contains(logs, "loner-")
	})
	logs := p.must("logs")
	for _, want := range []string{"pwd=/work role=peer host=peer", "peer-reached-web", "10.98.7.10\tweb", "loner-isolated"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "loner-reached-web") {
		t.Errorf("a scope none sandbox reached the group")
	}
	// Host-side names carry the project's identity: its name and a hash of its directory.
	project = runtime.ProjectID(project, p.dir)
	res, err := nsnet.List(context.Background(), project)
	if err != nil || res.Empty() {
		t.Fatalf("no network resources while running: %+v %v", res, err)
	}

	p.must("down")
	if res, err := nsnet.List(context.Background(), project); err != nil || !res.Empty() {
		t.Errorf("network resources left after down: %+v %v", res, err)
	}
	if procs := processesOf(p.dir); len(procs) > 0 {
		t.Errorf("processes left after down:\n%s", strings.Join(procs, "\n"))
	}
	if _, err := httpGet(url); err == nil {
		t.Errorf("port %d still answers after down", port)
	}
}

// testHost makes a host at a private address that the test owns: a network namespace with
// 192.168.78.2 behind a veth from the host, serving HTTP on port 8099. Traffic goes nowhere
// else.
func testHost(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("ip", "route", "get", "192.168.78.2").CombinedOutput(); err == nil && !strings.Contains(string(out), "via") {
		t.Skipf("192.168.78.0/24 is directly connected on this host: %s", out)
	}
	name := fmt.Sprintf("sbxe2e%d", os.Getpid()%100000)
	hostSide := fmt.Sprintf("sbxe2h%d", os.Getpid()%100000)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run("ip", "link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostSide).Run() })
	run("ip", "addr", "add", "192.168.78.1/24", "dev", hostSide)
	run("ip", "link", "set", hostSide, "up")
	run("ip", "netns", "exec", name, "ip", "addr", "add", "192.168.78.2/24", "dev", "eth0")
	run("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up")
	run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
	run("ip", "netns", "exec", name, "ip", "route", "add", "default", "via", "192.168.78.1")
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("private host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("ip", "netns", "exec", name, "/bin/busybox", "httpd", "-f", "-p", "192.168.78.2:8099", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })
	return "http://192.168.78.2:8099/"
}

func TestE2EPublicScopeBlocksPrivateHosts(t *testing.T) {
	_, _ = e2eSetup(t)
	url := testHost(t)
	p := newProject(t, fmt.Sprintf(`
project {
  name   = "e2epub%d"
  driver = "ns"
}

sandbox "pub" {
  image   = "IMAGE"
  command = ["sh", "-c", "grep nameserver /etc/resolv.conf; sleep 0.5; timeout 3 wget -q -O - %s && echo pub-reached || echo pub-blocked; exec sleep 3600"]
  network { scope = "public" }
}

sandbox "anyone" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 0.5; timeout 3 wget -q -O - %s && echo any-reached || echo any-blocked; exec sleep 3600"]
  network { scope = "any" }
}
`, os.Getpid()%100000, url, url))
	p.must("up")
	p.eventually("both tried", func() bool {
		logs := p.must("logs")
		return strings.Contains(logs, "pub-") && strings.Contains(logs, "any-")
	})
	logs := p.must("logs")
	if !strings.Contains(logs, "pub-blocked") {
		t.Errorf("a public sandbox reached a private address:\n%s", logs)
	}
	// Its resolver is the DNS forwarder on its gateway (no query is sent: the host's resolver
	// is not a test host).
	if !regexp.MustCompile(`pub +\| nameserver 10\.199\.[0-9]+\.1\n`).MatchString(logs) {
		t.Errorf("a public sandbox's resolv.conf does not name its gateway:\n%s", logs)
	}
	if !strings.Contains(logs, "any-reached") || !strings.Contains(logs, "private host") {
		t.Errorf("an any sandbox could not reach the test host (so the check above proves nothing):\n%s", logs)
	}
	p.must("down")
}

func TestE2ERlimitAboveHardLimitIsAClearError(t *testing.T) {
	if hasCapability(24) { // CAP_SYS_RESOURCE
		t.Skip("this process may raise hard limits (CAP_SYS_RESOURCE): nothing to refuse")
	}
	p := newProject(t, `
project { driver = "ns" }
sandbox "greedy" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
  rlimits = { NOFILE = "1024:1073741816" }
}
`)
	r := p.sbx("up")
	if r.code != 1 || !strings.Contains(r.stderr, "NOFILE") || !strings.Contains(r.stderr, "CAP_SYS_RESOURCE") {
		t.Fatalf("up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "panic") {
		t.Fatalf("panic:\n%s", r.stderr)
	}
}

// hasCapability reports whether the effective capability set holds capability bit.
func hasCapability(bit uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}

// TestE2EReadyTCPWaitsForTheGuest checks that a tcp ready probe on a published port waits for
// the guest to listen, not for the host-side proxy (which accepts at once).
func TestE2EReadyTCPWaitsForTheGuest(t *testing.T) {
	port := freePort(t)
	p := newProject(t, fmt.Sprintf(`
project { driver = "ns" }
sandbox "slow" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 1.5; exec httpd -f -p 8080 -h /etc"]
  port {
    host  = %d
    guest = 8080
  }
  network { scope = "none" }
  ready {
    tcp     = 8080
    timeout = "20s"
  }
}
`, port))
	p.must("up")
	// up returned once ready: the guest answers now.
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); err != nil {
		t.Fatalf("up returned before the guest listened: %v", err)
	}
}
