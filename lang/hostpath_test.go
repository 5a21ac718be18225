package lang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostPaths checks sensitive host paths through symlinks, allow_host_paths, and which
// mounts are marked outside the project.
func TestHostPaths(t *testing.T) {
	root := t.TempDir()
	proj := filepath.Join(root, "proj")
	outside := filepath.Join(root, "outside")
	home := filepath.Join(root, "home", "me")
	for _, d := range []string{proj, outside, filepath.Join(home, ".ssh"), filepath.Join(proj, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc":      "/etc",                      // a link to a system directory
		"dangling": "/etc/sbx-test-not-there",   // followed although its target is missing
		"out":      "../outside",                // leaves the project
		"keys":     filepath.Join(home, ".ssh"), // the user's keys
		"chain":    "etc",                       // link to a link
		"in":       "data",                      // stays inside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(proj, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "x.env"), []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x.env"), filepath.Join(proj, "link.env")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		project string // body of the project block
		sandbox string // body of sandbox "s", after the image
		err     string // summary of the one expected error, or ""
		outside bool   // the first mount is outside the project
	}{
		{name: "inside", sandbox: `mount { source = "data", target = "/d" }`},
		{name: "link inside", sandbox: `mount { source = "in", target = "/d" }`},
		{name: "link to etc", sandbox: `mount { source = "etc", target = "/d" }`, err: "Sensitive host path"},
		{name: "below a link to etc", sandbox: `mount { source = "etc/ssl", target = "/d" }`, err: "Sensitive host path"},
		{name: "link chain", sandbox: `mount { source = "chain", target = "/d" }`, err: "Sensitive host path"},
		{name: "dangling link", sandbox: `mount { source = "dangling", target = "/d" }`, err: "Sensitive host path"},
		{name: "link to keys", sandbox: `mount { source = "keys", target = "/d" }`, err: "Sensitive host path"},
		{name: "home", sandbox: `mount { source = "` + home + `", target = "/d" }`, err: "Sensitive host path"},
		{name: "outside", sandbox: `mount { source = "../outside", target = "/d" }`, outside: true},
		{name: "link outside", sandbox: `mount { source = "out", target = "/d" }`, outside: true},
		{name: "dotdot back in", sandbox: `mount { source = "../proj/data", target = "/d" }`},
		{name: "allowed", project: `allow_host_paths = ["/etc/ssl"]`,
			sandbox: `mount { source = "/etc/ssl/certs", target = "/d" }`, outside: true},
		{name: "allowed through a link", project: `allow_host_paths = ["etc"]`,
			sandbox: `mount { source = "/etc/hosts", target = "/d" }`, outside: true},
		{name: "allowed below only", project: `allow_host_paths = ["/etc/ssl"]`,
			sandbox: `mount { source = "/etc", target = "/d" }`, err: "Sensitive host path"},
		{name: "allowed keys", project: `allow_host_paths = ["` + home + `/.ssh"]`,
			sandbox: `mount { source = "keys", target = "/d" }`, outside: true},
		{name: "state never", project: `allow_host_paths = [".sbx"]`,
			sandbox: `mount { source = ".sbx", target = "/d" }`, err: "Sensitive host path"},
		{name: "env_file outside", sandbox: `env_file = ["../outside/x.env"]`, err: "env_file outside the project"},
		{name: "env_file link outside", sandbox: `env_file = ["link.env"]`, err: "env_file outside the project"},
		{name: "env_file allowed", project: `allow_host_paths = ["../outside"]`, sandbox: `env_file = ["link.env"]`},
		{name: "empty allow", project: `allow_host_paths = [""]`, err: "Invalid allow_host_paths"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "project {\n" + tc.project + "\n}\nsandbox \"s\" {\n  image = \"alpine\"\n" +
				strings.NewReplacer("{ ", "{\n", ", ", "\n", " }", "\n}").Replace(tc.sandbox) + "\n}\n"
			path := filepath.Join(proj, DefaultFilename)
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, diags := Load(path, WithEnviron([]string{"HOME=" + home}), WithCwd(proj))
			if tc.err == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:\n%s", renderDiags(cfg, diags))
				}
				s := cfg.Sandbox("s")
				if len(s.Mounts) > 0 && s.Mounts[0].OutsideProject != tc.outside {
					t.Errorf("OutsideProject = %v, want %v", s.Mounts[0].OutsideProject, tc.outside)
				}
				return
			}
			if got := diagSummaries(diags); len(got) != 1 || got[0] != tc.err {
				t.Fatalf("diagnostics %q, want one %q:\n%s", got, tc.err, renderDiags(cfg, diags))
			}
			if diags[0].Subject == nil || diags[0].Subject.Start.Line < 2 {
				t.Errorf("diagnostic without a useful range: %+v", diags[0].Subject)
			}
		})
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("a/../b", filepath.Join(dir, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		filepath.Join(dir, "rel", "c"):      filepath.Join(real, "b", "c"),
		filepath.Join(dir, "missing", ".."): real,
		"/":                                 "/",
	} {
		if got := resolvePath(in); got != want {
			t.Errorf("resolvePath(%q) = %q, want %q", in, got, want)
		}
	}
	// A symlink loop ends after a bounded number of hops instead of spinning.
	if got := resolvePath(filepath.Join(dir, "loop")); !strings.HasPrefix(got, real) {
		t.Errorf("resolvePath(loop) = %q", got)
	}
}

func TestHostRuleMatch(t *testing.T) {
	r := hostRule{path: "/home/*/.ssh"}
	for p, want := range map[string]string{
		"/":                  "contains",
		"/home":              "contains",
		"/home/bob":          "contains",
		"/home/bob/.ssh":     "is",
		"/home/bob/.ssh/id":  "is inside",
		"/home/bob/src":      "",
		"/homes/bob/.ssh":    "",
		"/home/bob/.sshx":    "",
		"/srv/home/bob/.ssh": "",
	} {
		if got := r.match(p); got != want {
			t.Errorf("match(%q) = %q, want %q", p, got, want)
		}
	}
	below := hostRule{path: "/p/.sbx", below: true}
	if below.match("/p") != "" || below.match("/p/.sbx/x") != "is inside" {
		t.Error("a below rule must not refuse its parents")
	}
}

// TestProjectInsideASensitiveTree: a project checked out in a sensitive tree (/root, when sbx
// runs as root) may mount its own files, but not the rest of the tree.
func TestProjectInsideASensitiveTree(t *testing.T) {
	home := t.TempDir()
	proj := filepath.Join(home, ".kube", "proj")
	if err := os.MkdirAll(filepath.Join(proj, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		`source = "site"`:         "",
		`source = "."`:            "",
		`source = "../config"`:    "Sensitive host path",
		`source = "` + home + `"`: "Sensitive host path",
	} {
		path := filepath.Join(proj, DefaultFilename)
		src := "sandbox \"s\" {\n  image = \"alpine\"\n  mount {\n    " + body + "\n    target = \"/d\"\n  }\n}\n"
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := Load(path, WithEnviron([]string{"HOME=" + home}), WithCwd(proj))
		got := strings.Join(diagSummaries(diags), ", ")
		if got != want {
			t.Errorf("%s: diagnostics %q, want %q", body, got, want)
		}
	}
}
