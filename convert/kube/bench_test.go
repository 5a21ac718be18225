package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/lang"
)

// project50 writes a 50-sandbox Sandboxfile: groups, ports, readiness probes, references,
// mounts and sensitive values in every shape the exporter maps.
func project50(t testing.TB) *lang.Config {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("variable \"pw\" {\n  default   = \"dev\"\n  sensitive = true\n}\n\nnetwork \"back\" {\n  subnet = \"10.61.0.0/24\"\n}\n\n")
	scopes := []string{"group", "public", "none", "any"}
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "sandbox \"s%d\" {\n  image = \"ghcr.io/acme/app:%d\"\n  cpus = 2\n  memory = \"1GiB\"\n  command = [\"serve\", \"--port\", \"8080\"]\n", i, i)
		fmt.Fprintf(&b, "  env = { PASSWORD = var.pw, MODE = \"prod\" }\n")
		if i > 0 && scopes[i%4] != "none" {
			fmt.Fprintf(&b, "  depends_on = [sandbox.s%d]\n", i-1)
		}
		fmt.Fprintf(&b, "  port {\n    host = %d\n    guest = 8080\n  }\n", 30000+i)
		fmt.Fprintf(&b, "  mount {\n    source = \".\"\n    target = \"/data\"\n  }\n")
		fmt.Fprintf(&b, "  ready {\n    tcp = 8080\n  }\n")
		if s := scopes[i%4]; s == "group" || s == "public" {
			fmt.Fprintf(&b, "  network {\n    scope = %q\n    group = network.back\n  }\n", s)
		} else {
			fmt.Fprintf(&b, "  network {\n    scope = %q\n  }\n", s)
		}
		b.WriteString("}\n\n")
	}
	path := filepath.Join(dir, "Sandboxfile")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return load(t, path)
}

// BenchmarkExport50 is sbx export kubernetes of a 50-sandbox project, from the loaded config
// to the YAML text.
func BenchmarkExport50(b *testing.B) {
	cfg := project50(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := Export(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadAndExport50 adds lang.Load, which sbx export runs first: the whole command but
// for process start.
func BenchmarkLoadAndExport50(b *testing.B) {
	cfg := project50(b)
	b.ReportAllocs()
	for b.Loop() {
		c, diags := lang.Load(cfg.File, lang.WithCwd(cfg.Dir), lang.WithEnviron(nil))
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		res, err := Export(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExport50 keeps the benchmark's input meaningful: every manifest decodes and validates.
func TestExport50(t *testing.T) {
	res, err := Export(project50(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := res.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	checkManifests(t, data)
	if n := strings.Count(string(data), "kind: Service\n"); n != 50 {
		t.Errorf("%d Services", n)
	}
}
