package planner

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/sbx-dev/sbx/lang"
)

// TestJSONSchema pins the keys of the --json document to those SCHEMA.md documents: a new key
// must be added there (and here); a removed or renamed one needs a new format_version.
func TestJSONSchema(t *testing.T) {
	st := applied(project(nil), nil)
	st.Sandboxes["old"] = NewRecord(sandbox("old"), nil, "sha256:0ld")
	cfg := project(map[string][]func(*lang.Sandbox){"db": {env("POSTGRES_PASSWORD", "x")}, "web": {port(5999, 1)}})
	cfg.Sandboxes = append(cfg.Sandboxes, sandbox("new"))
	busy := &fakeMachine{busy: map[string]bool{"127.0.0.1:5999/tcp": true}}
	p, err := Compute(cfg, st, WithObserved(Observed{"worker": StatusStopped}), WithMachine(busy))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) string {
		k := slices.Sorted(maps.Keys(m.(map[string]any)))
		return strings.Join(k, ",")
	}
	check := func(what string, m any, want string) {
		t.Helper()
		if got := keys(m); got != want {
			t.Errorf("%s keys: %s, want %s", what, got, want)
		}
	}
	check("plan", doc, "changes,format_version,no_deps,problems,state_lineage,state_serial,steps,summary,targets")
	check("summary", doc["summary"], "create,destroy,replace,start,update")
	if doc["format_version"] != "1" {
		t.Errorf("format_version %v", doc["format_version"])
	}
	actions := map[string]bool{}
	for _, s := range doc["steps"].([]any) {
		check("step", s, "action,changes,depends_on,discards,image,image_digest,reason,sandbox,status")
		step := s.(map[string]any)
		actions[step["action"].(string)] = true
		if step["changes"] == nil || step["depends_on"] == nil {
			t.Errorf("null list in %v", step)
		}
		for _, c := range step["changes"].([]any) {
			check("change", c, "field,forces_replacement,new,old,sensitive")
		}
	}
	if len(actions) != 4 {
		t.Errorf("actions %v", actions)
	}
	probs := doc["problems"].([]any)
	if len(probs) != 1 {
		t.Fatalf("problems %v", probs)
	}
	check("problem", probs[0], "field,message,sandbox")
	if doc["targets"] == nil {
		t.Error("targets is null")
	}
}

func TestDiagnostics(t *testing.T) {
	rng := hcl.Range{Filename: "/project/Sandboxfile", Start: hcl.Pos{Line: 3, Column: 1}, End: hcl.Pos{Line: 3, Column: 14}}
	cfg := config([]*lang.Sandbox{
		sandbox("a", port(81, 81)),
		sandbox("b", port(80, 81), func(s *lang.Sandbox) { s.Range = rng }),
	})
	p, err := Compute(cfg, nil, WithMachine(&fakeMachine{busy: map[string]bool{"127.0.0.1:80/tcp": true}}))
	if err != nil {
		t.Fatal(err)
	}
	diags := p.Diagnostics()
	if len(diags) != 1 || diags[0].Subject == nil || *diags[0].Subject != rng ||
		diags[0].Detail != `ports[0]: host port 127.0.0.1:80/tcp is already in use by another process; stop that process or change the host port` {
		t.Errorf("diagnostics %v", diags)
	}
	if p.Err() == nil || !strings.Contains(p.Err().Error(), "the plan cannot be applied") {
		t.Errorf("Err: %v", p.Err())
	}
}
