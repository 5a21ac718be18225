package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestE2ELsAcrossProjects(t *testing.T) {
	shop := newProject(t, `
project {
  name   = "shop"
  driver = "ns"
}
sandbox "web" {
  image   = "IMAGE"
  command = ["sh", "-c", "exec sleep 3600"]
  network { scope = "none" }
}
sandbox "job" {
  image   = "IMAGE"
  command = ["true"]
  network { scope = "none" }
}
`)
	blog := newProject(t, `
project { driver = "ns" }
sandbox "api" {
  image   = "IMAGE"
  command = ["sh", "-c", "exec sleep 3600"]
  network { scope = "none" }
}
`)
	blog.home = shop.home // one image store, as on a machine
	empty := newProject(t, "project { driver = \"ns\" }\n")
	empty.home = shop.home

	if r := shop.must("ls"); !strings.Contains(r, "No project") {
		t.Errorf("ls before any up:\n%s", r)
	}
	shop.must("up")
	blog.must("up")
	shop.eventually("job stopped", func() bool { return shop.ps()["job"].State == "stopped" })
	empty.must("up") // registers, but has no sandbox

	var rows []lsRow
	if err := json.Unmarshal([]byte(blog.must("ls", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	byDir := map[string]lsRow{}
	for _, r := range rows {
		byDir[r.Dir] = r
	}
	if len(rows) != 2 {
		t.Errorf("ls --json: %+v", rows)
	}
	if r := byDir[shop.dir]; r.Name != "shop" || r.Sandboxes != 2 || r.States["running"] != 1 || r.States["stopped"] != 1 {
		t.Errorf("shop: %+v", r)
	}
	if r := byDir[blog.dir]; r.Sandboxes != 1 || r.States["running"] != 1 {
		t.Errorf("blog: %+v", r)
	}
	out := shop.must("ls")
	if !strings.Contains(out, "1 running, 1 stopped") || !strings.Contains(out, shop.dir) || !strings.Contains(out, blog.dir) || strings.Contains(out, empty.dir) {
		t.Errorf("ls:\n%s", out)
	}

	// A project whose directory went is left out.
	blog.must("down")
	if err := os.RemoveAll(blog.dir); err != nil {
		t.Fatal(err)
	}
	if out := shop.must("ls"); strings.Contains(out, blog.dir) || !strings.Contains(out, shop.dir) {
		t.Errorf("ls after the blog's directory was removed:\n%s", out)
	}
}
