package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const composeForImport = `name: roundtrip
services:
  web:
    image: docker.io/library/nginx:1.27-alpine
    ports: ["48123:80"]
    volumes: ["./site:/usr/share/nginx/html:ro"]
    privileged: true
    depends_on:
      db:
        condition: service_healthy
  db:
    image: docker.io/library/postgres:${PG_TAG:-16}
    environment:
      POSTGRES_PASSWORD: dev
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportComposeRoundTrip: sbx import compose writes a Sandboxfile that sbx fmt --check,
// sbx validate and sbx plan accept; warnings go to stderr, one line each; -o never overwrites
// without --force.
func TestImportComposeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"docker-compose.yml": composeForImport, "site/index.html": "hi", ".env": "PG_TAG=16.4\n"})

	out, errs, code := runIn(t, dir, "import", "compose")
	if code != 0 {
		t.Fatalf("import: %d\n%s", code, errs)
	}
	if !strings.Contains(out, `sandbox "web"`) || !strings.Contains(out, `image = "docker.io/library/postgres:16.4"`) || !strings.Contains(out, "depends_on = [sandbox.db]") {
		t.Errorf("stdout:\n%s", out)
	}
	if strings.Count(errs, "Warning: ") != 1 || !strings.Contains(errs, "Warning: web: privileged: ") {
		t.Errorf("stderr should have one warning line, for web's privileged:\n%s", errs)
	}
	if !strings.Contains(out, "#   web: privileged: ") {
		t.Errorf("the warning is not in the comment block at the top:\n%s", out)
	}

	if _, errs, code := runIn(t, dir, "import", "compose", "docker-compose.yml", "-o", "Sandboxfile"); code != 0 || !strings.Contains(errs, "Wrote Sandboxfile (2 sandboxes, 1 warning") {
		t.Fatalf("import -o: %d\n%s", code, errs)
	}
	written, _ := os.ReadFile(filepath.Join(dir, "Sandboxfile"))
	if !bytes.Equal(written, []byte(out)) {
		t.Error("-o wrote something else than stdout showed")
	}
	for _, args := range [][]string{{"fmt", "--check"}, {"validate"}, {"plan"}} {
		if out, errs, code := runIn(t, dir, args...); code != 0 {
			t.Fatalf("sbx %s: %d\n%s%s", args[0], code, out, errs)
		} else if args[0] == "plan" && !strings.Contains(out, "Plan: 2 to create") {
			t.Errorf("plan:\n%s", out)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runIn(t, dir, "import", "compose", "-o", "Sandboxfile"); code != 1 || !strings.Contains(errs, "already exists") || !strings.Contains(errs, "--force") {
		t.Fatalf("import over an existing file: %d\n%s", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Sandboxfile")); string(b) != "# mine\n" {
		t.Fatal("import overwrote the file without --force")
	}
	if _, errs, code := runIn(t, dir, "import", "compose", "-o", "Sandboxfile", "--force"); code != 0 {
		t.Fatalf("import --force: %d\n%s", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Sandboxfile")); !bytes.Equal(b, written) {
		t.Error("--force did not replace the file")
	}
}

// TestImportComposeFilesProfilesAndExitCodes: several files merged in order, --profile, and exit
// 1 only when nothing usable comes out.
func TestImportComposeFilesProfilesAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yml": "services:\n  app:\n    image: alpine:3.20\n    command: [\"sleep\", \"1\"]\n  debug:\n    image: busybox\n    profiles: [debug]\n",
		"b.yml": "services:\n  app:\n    command: [\"sleep\", \"2\"]\n",
		"c.yml": "services:\n  only:\n    image: alpine\n    profiles: [x]\n",
	})
	out, errs, code := runIn(t, dir, "import", "compose", "a.yml", "b.yml")
	if code != 0 || !strings.Contains(out, `command = ["sleep", "2"]`) || strings.Contains(out, `sandbox "debug"`) || !strings.Contains(errs, "Warning: debug: profiles: ") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	out2, _, code := runIn(t, dir, "import", "compose", "-f", "a.yml", "--file=b.yml")
	if code != 0 || out2 != out {
		t.Fatalf("-f a.yml --file=b.yml differs from a.yml b.yml: %d\n%s", code, out2)
	}
	out, _, code = runIn(t, dir, "import", "compose", "a.yml", "--profile", "debug")
	if code != 0 || !strings.Contains(out, `sandbox "debug"`) {
		t.Fatalf("--profile: %d\n%s", code, out)
	}
	out, errs, code = runIn(t, dir, "import", "compose", "c.yml", "-o", "Sandboxfile")
	if code != 1 || out != "" || !strings.Contains(errs, "Warning: only: profiles: ") || !strings.Contains(errs, "nothing to import") {
		t.Fatalf("nothing usable: %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "Sandboxfile")); err == nil {
		t.Error("a Sandboxfile was written although nothing was usable")
	}
	_, errs, code = runIn(t, dir, "import", "compose", "missing.yml")
	if code != 1 || !strings.Contains(errs, "missing.yml") {
		t.Fatalf("missing file: %d %s", code, errs)
	}
	_, errs, code = runIn(t, t.TempDir(), "import", "compose")
	if code != 1 || !strings.Contains(errs, "no Compose file here") {
		t.Fatalf("no file: %d %s", code, errs)
	}
}

// TestImportComposeBadInput: a YAML bomb and a wrong type get a one-line error, no panic.
func TestImportComposeBadInput(t *testing.T) {
	dir := t.TempDir()
	bomb := "x-a: &a [l,l,l,l,l,l,l,l,l]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nx-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\nx-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nservices:\n  a:\n    image: alpine\n    command: *g\n"
	writeFiles(t, dir, map[string]string{"bomb.yml": bomb, "types.yml": "services:\n  a:\n    image: alpine\n    ports: 8080\n"})
	for file, want := range map[string]string{"bomb.yml": "aliases", "types.yml": "ports must be a array"} {
		_, errs, code := runIn(t, dir, "import", "compose", file)
		if code != 1 || !strings.Contains(errs, want) || strings.Contains(errs, "goroutine") {
			t.Errorf("%s: %d %s", file, code, errs)
		}
	}
}

func TestImportMicrosandbox(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Sandboxfile": "sandboxes:\n  app:\n    image: python:3.12\n    memory: 1024\n    ports: [\"48124:8000\"]\n    envs: [\"A=1\"]\n    volumes: [\"./src:/app\"]\n    scripts:\n      start: python -m http.server\n      lint: ruff .\n    scope: public\n",
		"src/main.py": "",
	})
	out, errs, code := runIn(t, dir, "import", "microsandbox")
	if code != 0 || !strings.Contains(out, `entrypoint = ["/bin/sh", "-c", "python -m http.server"]`) || !strings.Contains(errs, "Warning: app: scripts.lint: ") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	if _, errs, code := runIn(t, dir, "import", "microsandbox", "-o", "Sandboxfile"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("overwrote its own input: %d %s", code, errs)
	}
	if _, errs, code := runIn(t, dir, "import", "microsandbox", "Sandboxfile", "-o", "sbx/Sandboxfile"); code != 1 || !strings.Contains(errs, "sbx/Sandboxfile") {
		t.Logf("into a missing directory: %d %s", code, errs)
	}
	if err := os.Mkdir(filepath.Join(dir, "sbx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runIn(t, dir, "import", "microsandbox", "Sandboxfile", "-o", "sbx/Sandboxfile"); code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	written, _ := os.ReadFile(filepath.Join(dir, "sbx", "Sandboxfile"))
	if !strings.Contains(string(written), `source = "../src"`) && !strings.Contains(string(written), filepath.Join(dir, "src")) {
		t.Errorf("the mount source is not relative to the output's directory:\n%s", written)
	}
	for _, args := range [][]string{{"-C", "sbx", "validate"}, {"-C", "sbx", "fmt", "--check"}, {"-C", "sbx", "plan"}} {
		if out, errs, code := runIn(t, dir, args...); code != 0 {
			t.Fatalf("sbx %v: %d\n%s%s", args, code, out, errs)
		}
	}
}
