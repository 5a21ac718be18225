package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runIn runs the sbx binary in dir, without a terminal, and returns stdout, stderr and the
// exit code.
func runIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sbxBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SBX_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestInitWritesAValidSandboxfileOnce(t *testing.T) {
	dir := t.TempDir()
	out, _, code := runIn(t, dir, "init")
	if code != 0 || !strings.Contains(out, "Wrote Sandboxfile") {
		t.Fatalf("init: %d %s", code, out)
	}
	if out, errs, code := runIn(t, dir, "validate"); code != 0 {
		t.Fatalf("the starter Sandboxfile does not validate:\n%s%s", out, errs)
	}
	if _, _, code := runIn(t, dir, "fmt", "--check"); code != 0 {
		t.Error("the starter Sandboxfile is not formatted")
	}
	before, _ := os.ReadFile(filepath.Join(dir, "Sandboxfile"))
	_, errs, code := runIn(t, dir, "init")
	if code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("second init: %d %s", code, errs)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "Sandboxfile"))
	if !bytes.Equal(before, after) {
		t.Error("init overwrote the Sandboxfile")
	}
}

const badSandboxfile = `sandbox "db" {
  image = "docker.io/library/postgres:16"
  cpu   = 2
}

sandbox "api" {
  image  = "ghcr.io/acme/api:1"
  memory = "lots"
}
`

func TestValidateText(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte(badSandboxfile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runIn(t, dir, "validate")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"Error: Unsupported argument",
		`on Sandboxfile line 3, in sandbox "db":`,
		"  3:   cpu   = 2\n       ^^^\n",
		`Did you mean "cpus"?`,
		`on Sandboxfile line 8, in sandbox "api":`,
		"  8:   memory = \"lots\"\n",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "\x1b[") {
		t.Error("colours on a non-terminal")
	}
}

func TestValidateJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte(badSandboxfile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runIn(t, dir, "validate", "--json")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var v validateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if v.Valid || v.ErrorCount != 2 || len(v.Diagnostics) != 2 {
		t.Fatalf("%+v", v)
	}
	d := v.Diagnostics[0]
	if d.Severity != "error" || d.Range == nil || d.Range.Filename != "Sandboxfile" || d.Range.Start.Line != 3 || d.Range.Start.Column != 3 || d.Snippet != "  cpu   = 2" {
		t.Errorf("first diagnostic: %+v %+v", d, d.Range)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	ugly := "sandbox \"a\" {\nimage=\"x\"\n    cpus = 2\n}\n"
	path := filepath.Join(dir, "Sandboxfile")
	if err := os.WriteFile(path, []byte(ugly), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runIn(t, dir, "fmt", "--check", "--diff")
	if code != 1 || !strings.Contains(out, "-image=\"x\"") || !strings.Contains(out, "+  image = \"x\"") {
		t.Fatalf("fmt --check --diff: %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(path); string(b) != ugly {
		t.Fatal("fmt --check changed the file")
	}
	if _, _, code := runIn(t, dir, "fmt"); code != 0 {
		t.Fatalf("fmt: exit %d", code)
	}
	want := "sandbox \"a\" {\n  image = \"x\"\n  cpus  = 2\n}\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Fatalf("formatted:\n%s", b)
	}
	if _, _, code := runIn(t, dir, "fmt", "--check"); code != 0 {
		t.Error("a formatted file fails --check")
	}
}

func TestGraph(t *testing.T) {
	out, errs, code := runIn(t, "../../examples/webapp", "graph")
	if code != 0 {
		t.Fatalf("graph: %d %s", code, errs)
	}
	for _, want := range []string{
		`digraph "shop" {`,
		`"sandbox.api" -> "sandbox.cache" [label = "depends_on, reference"];`,
		`"sandbox.api" -> "sandbox.db" [label = "reference"];`,
		`"sandbox.db" -> "network.backend" [style = dashed, arrowhead = none, label = "group 10.88.0.10"];`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("graph lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	out, _, code := runIn(t, t.TempDir(), "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, cmd := range []string{"init", "validate", "fmt", "graph", "plan", "up", "down", "ps", "logs", "restart", "pull", "images", "prune", "version"} {
		if !strings.Contains(out, "\n  "+cmd) {
			t.Errorf("--help does not list %s:\n%s", cmd, out)
		}
	}
	if strings.Contains(out, "__supervise") {
		t.Error("--help lists a hidden command")
	}
	out, _, code = runIn(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "sbx ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestPlanExitCodes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte("sandbox \"a\" {\n  image = \"docker.io/library/alpine:3\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runIn(t, dir, "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "Plan: 1 to create") {
		t.Fatalf("plan --detailed-exitcode: %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sbx")); !os.IsNotExist(err) {
		t.Error("plan created .sbx/")
	}
	_, errs, code := runIn(t, dir, "plan", "b")
	if code != 1 || !strings.Contains(errs, `"b"`) {
		t.Errorf("unknown target: %d %s", code, errs)
	}
	_, errs, code = runIn(t, t.TempDir(), "plan")
	if code != 1 || !strings.Contains(errs, "sbx init") {
		t.Errorf("no Sandboxfile: %d %s", code, errs)
	}
}

func TestLogsShortFollowFlag(t *testing.T) {
	got := followFlag([]string{"-f", "x.sbx", "logs", "-f", "web"})
	want := []string{"-f", "x.sbx", "logs", "--follow", "web"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("followFlag = %v, want %v", got, want)
	}
}

// TestLogsHelpOneMeaningOfF: after "logs", -f is --follow, and its help says only that.
func TestLogsHelpOneMeaningOfF(t *testing.T) {
	out, _, code := runIn(t, t.TempDir(), "logs", "--help")
	if code != 0 {
		t.Fatalf("logs --help: exit %d", code)
	}
	if strings.Count(out, "-f,") != 1 || !strings.Contains(out, "-f, --follow") || strings.Contains(out, "-f, --file") {
		t.Errorf("logs --help shows -f with more than one meaning:\n%s", out)
	}
	out, _, _ = runIn(t, t.TempDir(), "up", "--help")
	if !strings.Contains(out, "-f, --file") {
		t.Errorf("up --help lost -f for --file:\n%s", out)
	}
}

// TestSandboxfileInAParentDirectory: commands run from a subdirectory of a project find its
// Sandboxfile, as git and Terraform find theirs.
func TestSandboxfileInAParentDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte("sandbox \"web\" {\n  image = \"docker.io/library/busybox:1\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "site", "assets")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runIn(t, sub, "validate")
	if code != 0 || !strings.Contains(out, "1 sandbox") {
		t.Fatalf("validate from a subdirectory: %d\n%s%s", code, out, errs)
	}
	out, errs, code = runIn(t, sub, "plan")
	if code != 0 || !strings.Contains(out, "+ create sandbox.web") {
		t.Fatalf("plan from a subdirectory: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(sub, ".sbx")); err == nil {
		t.Error("a .sbx directory was made in the subdirectory")
	}
	// An explicit -f is taken as given.
	_, errs, code = runIn(t, sub, "-f", "Other", "validate")
	if code != 1 || !strings.Contains(errs, filepath.Join(sub, "Other")) {
		t.Errorf("-f Other from a subdirectory: %d %s", code, errs)
	}
}

func TestVarFlagKeepsCommas(t *testing.T) {
	dir := t.TempDir()
	src := `variable "tags" {
  type = string
}

sandbox "a" {
  image = "docker.io/library/alpine:3"
  env   = { TAGS = var.tags }
}
`
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runIn(t, dir, "up", "--dry-run", "--var", "tags=a,b")
	if code != 0 || !strings.Contains(out, "Plan: 1 to create") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
}
