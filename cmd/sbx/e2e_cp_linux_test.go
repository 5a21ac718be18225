package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testCp copies a tree into the running sandbox web and back out, files and directories
// with their modes, onto a new name and into a directory, and checks the one-line errors for
// a missing destination and a missing source.
func testCp(t *testing.T, p *project, driver string) {
	host := t.TempDir()
	tree := filepath.Join(host, "tree")
	mk := func(name string, mode os.FileMode, data string) {
		t.Helper()
		full := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("run.sh", 0o750, "#!/bin/sh\necho ran\n")
	mk("conf/app.conf", 0o640, "key = value\n")
	if err := os.Chmod(filepath.Join(tree, "conf"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("conf/app.conf", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	sbx := func(args ...string) result {
		t.Helper()
		return p.sbxDriver(driver, args...)
	}

	// Into an existing directory: /srv/tree.
	if r := sbx("cp", tree, "web:/srv"); r.code != 0 {
		t.Fatalf("cp into the sandbox: %d %s", r.code, r.stderr)
	}
	r := sbx("exec", "web", "--", "sh", "-c", "stat -c '%n %a %u' /srv/tree/run.sh /srv/tree/conf /srv/tree/conf/app.conf; readlink /srv/tree/link; /srv/tree/run.sh")
	want := "/srv/tree/run.sh 750 0\n/srv/tree/conf 710 0\n/srv/tree/conf/app.conf 640 0\nconf/app.conf\nran\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("in the sandbox: %d %q %s, want %q", r.code, r.stdout, r.stderr, want)
	}
	// A file onto a new name, relative to the sandbox's working directory (/).
	if r := sbx("cp", filepath.Join(tree, "conf", "app.conf"), "web:tmp/renamed.conf"); r.code != 0 {
		t.Fatalf("cp a file onto a name: %d %s", r.code, r.stderr)
	}
	if r := sbx("exec", "web", "--", "cat", "/tmp/renamed.conf"); r.stdout != "key = value\n" {
		t.Errorf("renamed copy: %q %s", r.stdout, r.stderr)
	}

	// Back out: a directory into a host directory, then onto a new name.
	back := t.TempDir()
	if r := sbx("cp", "web:/srv/tree", back); r.code != 0 {
		t.Fatalf("cp out of the sandbox: %d %s", r.code, r.stderr)
	}
	for name, mode := range map[string]os.FileMode{"tree": 0o755, "tree/run.sh": 0o750, "tree/conf": 0o710, "tree/conf/app.conf": 0o640} {
		fi, err := os.Stat(filepath.Join(back, name))
		if err != nil {
			t.Errorf("copied back: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", name, fi.Mode().Perm(), mode)
		}
	}
	if l, err := os.Readlink(filepath.Join(back, "tree", "link")); err != nil || l != "conf/app.conf" {
		t.Errorf("symlink copied back: %q %v", l, err)
	}
	if r := sbx("cp", "web:/etc/passwd", filepath.Join(back, "pw")); r.code != 0 {
		t.Fatalf("cp a file out onto a name: %d %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(back, "pw")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("copied passwd: %q %v", b, err)
	}

	// From one sandbox path to another (here the same sandbox: two connections at once).
	if r := sbx("cp", "web:/srv/tree", "web:/tmp/tree2"); r.code != 0 {
		t.Fatalf("cp between sandbox paths: %d %s", r.code, r.stderr)
	}
	if r := sbx("exec", "web", "--", "stat", "-c", "%n %a", "/tmp/tree2/conf/app.conf"); r.stdout != "/tmp/tree2/conf/app.conf 640\n" {
		t.Errorf("copied within the sandbox: %q %s", r.stdout, r.stderr)
	}

	// Tar streams on stdout and stdin.
	r = sbx("cp", "web:/srv/tree/conf", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "conf/app.conf") || !strings.Contains(r.stdout, "key = value") {
		t.Errorf("cp to -: %d %d bytes %s", r.code, len(r.stdout), r.stderr)
	}
	if r := p.sbxStdin(driver, r.stdout, "cp", "-", "web:/tmp"); r.code != 0 {
		t.Errorf("cp from -: %d %s", r.code, r.stderr)
	}
	if r := sbx("exec", "web", "--", "cat", "/tmp/conf/app.conf"); r.stdout != "key = value\n" {
		t.Errorf("extracted from stdin: %q %s", r.stdout, r.stderr)
	}

	// Bad input: one line each, saying what to do.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", tree, "web:/no/such/dir"}, "/no/such does not exist in sandbox web: create it with 'sbx exec web -- mkdir -p /no/such'"},
		{[]string{"cp", "web:/etc/passwd", filepath.Join(back, "no", "such", "file")}, filepath.Join(back, "no", "such") + " does not exist: create it with 'mkdir -p"},
		{[]string{"cp", "web:/no-such-file", back}, "web:/no-such-file: no such file or directory in sandbox web"},
		{[]string{"cp", tree, "nope:/tmp"}, `no such sandbox "nope"`},
		{[]string{"cp", tree, back}, "names a sandbox"},
	} {
		r := sbx(tc.args...)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sbx %s: %d %q, want one line with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}
