package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestLayering keeps data flowing one way (design.md §8): lang → planner → runtime → krun,
// with plan and spec types free of OCI, process and libkrun imports.
func TestLayering(t *testing.T) {
	const mod = "github.com/sbx-dev/sbx/"
	forbidden := map[string][]string{
		"lang":    {mod + "planner", mod + "runtime", mod + "krun", mod + "cmd", "github.com/ebitengine/purego", "os/exec"},
		"planner": {mod + "runtime", mod + "krun", mod + "cmd", "github.com/google/go-containerregistry/pkg/v1", "github.com/ebitengine/purego", "os/exec"},
		"krun":    {mod + "lang", mod + "planner", mod + "runtime", mod + "cmd"},
		"runtime": {mod + "cmd"},
		// convert reads lang's configs and writes text; os/exec comes in with compose-go's
		// shell-words splitter, which never runs anything for it.
		"convert": {mod + "planner", mod + "runtime", mod + "krun", mod + "cmd", "github.com/ebitengine/purego"},
		// compose-go's initialisation (~8 ms) stays in sbx-convert, out of every sbx command.
		"cmd/sbx": {"github.com/compose-spec/compose-go", "github.com/santhosh-tekuri/jsonschema"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", "../../"+pkg+"/...").Output()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") {
				continue
			}
			t.Fatalf("go list %s: %v", pkg, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p struct{ ImportPath string }
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			for _, b := range bad {
				if p.ImportPath == b || strings.HasPrefix(p.ImportPath, b+"/") {
					t.Errorf("%s depends on %s", pkg, p.ImportPath)
				}
			}
		}
	}
}
