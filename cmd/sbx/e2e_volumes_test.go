package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const volumeProject = `
project { driver = "ns" }

volume "data" {}

sandbox "db" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo x >> /data/rows; echo rows=$(wc -l < /data/rows); exec sleep 3600"]
  network { scope = "none" }
  mount {
    volume = volume.data
    target = "/data"
  }
  ready { log = "rows=" }
}
`

// A named volume outlives down; down --volumes deletes it; sbx volumes lists it.
func TestE2EVolumes(t *testing.T) {
	p := newProject(t, volumeProject)
	rows := func() string {
		logs := p.must("logs", "db")
		i := strings.LastIndex(logs, "rows=")
		if i < 0 {
			t.Fatalf("no rows= line:\n%s", logs)
		}
		return strings.TrimSpace(strings.SplitN(logs[i:], "\n", 2)[0])
	}
	if out := p.must("volumes"); !strings.Contains(out, "(created when a sandbox using it starts)") {
		t.Errorf("volumes before up:\n%s", out)
	}
	p.must("up")
	if got := rows(); got != "rows=1" {
		t.Fatalf("first up: %s", got)
	}
	out := p.must("down")
	if !strings.Contains(out, "Kept volumes: data ('sbx down --volumes' deletes them).") {
		t.Errorf("down said:\n%s", out)
	}
	p.must("up")
	if got := rows(); got != "rows=2" {
		t.Errorf("after down and up: %s, want the volume's data kept", got)
	}
	var vs []volumeRow
	if err := json.Unmarshal([]byte(p.must("volumes", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Name != "data" || vs[0].Bytes != 4 || len(vs[0].UsedBy) != 1 || vs[0].UsedBy[0] != "db" {
		t.Errorf("volumes --json: %+v", vs)
	}
	if out := p.must("down", "--volumes"); !strings.Contains(out, "volume data: deleted with its data") {
		t.Errorf("down --volumes said:\n%s", out)
	}
	p.must("up")
	if got := rows(); got != "rows=1" {
		t.Errorf("after down --volumes and up: %s", got)
	}
	p.must("down", "--volumes")
}

// The pids attribute bounds the processes of a sandbox: a loop forking past it is refused
// inside, and the sandbox goes on.
func TestE2EPidsLimit(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "forky" {
  image   = "IMAGE"
  pids    = 32
  command = ["sh", "-c", "(for i in $(seq 64); do sleep 300 & done) 2>&1; echo loop done; exec sleep 3600"]
  network { scope = "none" }
  ready { log = "loop done" }
}
`)
	p.must("up")
	defer p.sbx("down")
	logs := p.must("logs", "forky")
	if !strings.Contains(logs, "fork") {
		t.Errorf("64 forks under pids = 32 all succeeded:\n%s", logs)
	}
}
