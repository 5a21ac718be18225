package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// generate writes a Sandboxfile with n sandboxes in one network; each references the previous
// one's address and ports and depends on it.
func generate(n int) string {
	var b strings.Builder
	b.WriteString(`
variable "tag" {
  type    = string
  default = "3.20"
  validation {
    condition     = length(var.tag) > 0
    error_message = "tag must not be empty."
  }
}

variable "token" {
  default   = "secret"
  sensitive = true
}

locals {
  registry = "docker.io/library"
  image    = "${local.registry}/alpine:${var.tag}"
  base     = 10000
  first_ip = sandbox.s0.ip
}

network "net" {
  subnet = "10.64.0.0/16"
}
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `
sandbox "s%d" {
  image   = local.image
  memory  = "256MiB"
  command = ["serve", "--port", "80"]
  env = {
    INDEX = "%d"
    TOKEN = var.token
`, i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    PREV  = \"${sandbox.s%d.ip}:${sandbox.s%d.ports[80]}\"\n    FIRST = local.first_ip\n", i-1, i-1)
		}
		fmt.Fprintf(&b, `  }

  port {
    host  = local.base + %d
    guest = 80
  }

  network {
    scope = "group"
    group = network.net
  }
`, i)
		if i > 0 {
			fmt.Fprintf(&b, "\n  depends_on = [sandbox.s%d]\n", i-1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, DefaultFilename)
			if err := os.WriteFile(path, []byte(generate(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			opts := []Option{WithEnviron(nil), WithCwd(dir)}
			cfg, diags := Load(path, opts...)
			if diags.HasErrors() || len(cfg.Sandboxes) != n {
				b.Fatalf("generated file does not load:\n%s", renderDiags(cfg, diags))
			}
			b.ReportAllocs()
			// CPU time says what a load costs on a busy machine, where wall time mostly
			// measures the other processes; it also shows what parallelism costs.
			start := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				Load(path, opts...)
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestGeneratedLoads checks the benchmark's input once in normal test runs.
func TestGeneratedLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultFilename)
	if err := os.WriteFile(path, []byte(generate(50)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, path)
	if len(cfg.Sandboxes) != 50 || len(cfg.Edges) != 49*2+48 {
		t.Errorf("%d sandboxes, %d edges", len(cfg.Sandboxes), len(cfg.Edges))
	}
	s := cfg.Sandbox("s7")
	if !strings.HasPrefix(s.Env["PREV"], "10.64.") || !strings.HasSuffix(s.Env["PREV"], ":10006") {
		t.Errorf("PREV = %q", s.Env["PREV"])
	}
}

// BenchmarkParseBaseline measures hclsyntax.ParseConfig alone on the same files, the floor
// under BenchmarkLoad.
func BenchmarkParseBaseline(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := []byte(generate(n))
			b.ReportAllocs()
			for b.Loop() {
				hclsyntax.ParseConfig(src, DefaultFilename, hcl.InitialPos)
			}
		})
	}
}
