package lang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad feeds arbitrary Sandboxfiles to the parser and evaluator: they must never panic,
// and every problem must come back as a diagnostic.
func FuzzLoad(f *testing.F) {
	addSandboxfiles(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, DefaultFilename)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cfg, diags := Load(path, WithEnviron([]string{"SBX_VAR_x=1"}), WithCwd(dir),
			WithVars(map[string]string{}), WithStickyIPs(nil))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Load took %v", d)
		}
		if cfg == nil || cfg.File != path || cfg.Dir != dir || cfg.Sources == nil {
			t.Fatalf("Load returned an incomplete Config: %+v", cfg)
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Errorf("diagnostic without a summary: %+v", d)
			}
			if d.Severity != hcl.DiagError && d.Severity != hcl.DiagWarning {
				t.Errorf("diagnostic with severity %v", d.Severity)
			}
		}
		if diags.HasErrors() {
			return
		}
		// A clean load must satisfy the spec's invariants.
		seen := map[string]bool{}
		for _, s := range cfg.Sandboxes {
			if seen[s.Name] {
				t.Errorf("sandbox %q twice", s.Name)
			}
			seen[s.Name] = true
			if s.Image == "" || s.CPUs < 1 || s.CPUs > 255 || s.MemoryMiB < 1 {
				t.Errorf("invalid spec accepted: %+v", s)
			}
			if s.Network.Group != "" && !s.Network.IP.IsValid() {
				t.Errorf("%s: group %q without an address", s.Name, s.Network.Group)
			}
			for _, p := range s.Ports {
				if p.Host < 1 || p.Host > 65535 || p.Guest < 1 || p.Guest > 65535 {
					t.Errorf("%s: port out of range: %+v", s.Name, p)
				}
			}
			if s.Pids < 1 || s.Pids > MaxPids {
				t.Errorf("%s: pids %d accepted", s.Name, s.Pids)
			}
			for _, m := range s.Mounts {
				switch {
				case (m.Source == "") == (m.Volume == ""):
					t.Errorf("%s: mount needs exactly one of source and volume: %+v", s.Name, m)
				case m.Volume != "" && cfg.Volume(m.Volume) == nil:
					t.Errorf("%s: mount of undeclared volume %+v", s.Name, m)
				case m.Source != "" && !filepath.IsAbs(m.Source), !filepath.IsAbs(m.Target):
					t.Errorf("%s: relative mount %+v", s.Name, m)
				}
			}
		}
		for _, e := range cfg.Edges {
			if !seen[e.From] || !seen[e.To] || e.From == e.To {
				t.Errorf("bad edge %+v", e)
			}
		}
	})
}

// FuzzValues puts arbitrary expressions into the attributes of a valid Sandboxfile, where
// byte-level mutation of whole files rarely gets past the parser.
func FuzzValues(f *testing.F) {
	attrs := []string{"image", "cpus", "memory", "command", "env", "env_file", "rlimits", "restart",
		"stop_timeout", "workdir", "user", "depends_on", "pids"}
	for _, e := range []string{`"2GiB"`, `[sandbox.b.ip]`, `{ NOFILE = "1:2" }`, `range(3)`, `file("x")`,
		`var.v`, `local.l`, `sandbox.b.ports[80]`, `network.n`, `jsondecode("[1]")`, `"${sandbox.b.ip}"`,
		`try(var.v[9], 1)`, `{ for k, v in var.m : k => v }`, `[sandbox.b]`, `volume.data`, `4096`,
		`"oci-layout:./img"`, `"dir:/"`, `["/etc/passwd"]`} {
		for i := range attrs {
			f.Add(uint8(i), e, e)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, expr, portExpr string) {
		attr := attrs[int(which)%len(attrs)]
		src := `
variable "v" {
  default = ["a"]
}
variable "m" {
  type    = map(string)
  default = { a = "b" }
}
locals {
  l = sandbox.b.name
}
network "n" {
  subnet = "10.9.0.0/24"
}
volume "data" {}
sandbox "a" {
  ` + attr + ` = ` + expr + `
  image = "alpine"
  port {
    guest = ` + portExpr + `
  }
  network {
    group = network.n
  }
}
sandbox "b" {
  image = "alpine"
  mount {
    volume = volume.data
    target = "/data"
  }
  port {
    guest = 80
  }
  network {
    group = network.n
  }
}
`
		if attr == "image" {
			src = strings.Replace(src, "  image = \"alpine\"\n  port {\n    guest = "+portExpr, "  port {\n    guest = "+portExpr, 1)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, DefaultFilename)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cfg, diags := Load(path, WithEnviron(nil), WithCwd(dir))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Load took %v", d)
		}
		if cfg == nil || cfg.Sources == nil {
			t.Fatal("incomplete Config")
		}
		if !diags.HasErrors() && len(cfg.Sandboxes) != 2 {
			t.Errorf("no errors but %d sandboxes", len(cfg.Sandboxes))
		}
	})
}

// addSandboxfiles seeds a fuzz target with every Sandboxfile of testdata and examples.
func addSandboxfiles(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/lang/*/*.sbx")
	examples, _ := filepath.Glob("../examples/*/Sandboxfile")
	for _, p := range append(seeds, examples...) {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
}
