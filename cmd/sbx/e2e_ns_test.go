package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
