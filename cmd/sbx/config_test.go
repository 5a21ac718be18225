package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func init() {
	// go test ./cmd/sbx -run TestConfigGolden -update rewrites the golden files.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// configProject copies testdata/config to a fresh directory, with the directories its mounts
// name.
func configProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"Sandboxfile", ".env.web"} {
		b, err := os.ReadFile(filepath.Join("testdata", "config", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"data", "static", "src"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConfigGolden(t *testing.T) {
	dir := configProject(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"config.hcl.golden", []string{"--var", "tag=3.20", "config"}},
		{"config.json.golden", []string{"--var", "tag=3.20", "--driver", "ns", "config", "--json"}},
	} {
		cmd := exec.Command(sbxBinary(t), append([]string{"-C", dir}, tc.args...)...)
		cmd.Env = append(os.Environ(), "SBX_VAR_replicas_note=from SBX_VAR", "SBX_DRIVER=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sbx %v: %v", tc.args, err)
		}
		got := strings.ReplaceAll(string(out), dir, "<dir>")
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "<dir>/data") {
			t.Errorf("sbx %v shows a sensitive value:\n%s", tc.args, got)
		}
		path := filepath.Join("testdata", "config", tc.golden)
		if updating() {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if got != string(want) {
			t.Errorf("sbx %v differs from %s:\n%s", tc.args, path, got)
		}
	}
}

// The text form is a Sandboxfile: it loads, and configures the same thing again.
func TestConfigTextReloads(t *testing.T) {
	dir := configProject(t)
	out, errs, code := runIn(t, dir, "config")
	if code != 0 {
		t.Fatalf("config: %d %s", code, errs)
	}
	first, _, _ := runIn(t, dir, "config", "--json")
	again := t.TempDir()
	for _, d := range []string{"data", "static", "src"} {
		_ = os.Mkdir(filepath.Join(again, d), 0o755)
	}
	// Masked values cannot come back; the fixture's are replaced by what they stood for.
	text := strings.ReplaceAll(out, `"(sensitive)"`, `"masked"`)
	if err := os.WriteFile(filepath.Join(again, "Sandboxfile"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	second, errs, code := runIn(t, again, "config", "--json")
	if code != 0 {
		t.Fatalf("the text form of sbx config does not load: %s\n%s", errs, text)
	}
	var a, b resolvedConfig
	if err := json.Unmarshal([]byte(first), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(second), &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Sandboxes) != len(b.Sandboxes) || a.Sandboxes[1].Command[2] != b.Sandboxes[1].Command[2] || b.Sandboxes[0].Network.IP != "10.77.0.5" || len(b.Sandboxes[1].DependsOn) != 1 {
		t.Errorf("reloaded differently:\n%s\n%s", first, second)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte(badSandboxfile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runIn(t, dir, "config")
	if code != 1 || out != "" || !strings.Contains(errs, "on Sandboxfile line 3") {
		t.Errorf("config of a bad Sandboxfile: %d\n%s\n%s", code, out, errs)
	}
}
