package lang

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/lang/golden")

// testEnv is the environment every fixture is loaded with, so results do not depend on the
// machine.
func testOpts(dir string) []Option {
	return []Option{WithEnviron([]string{"HOME=/home/test"}), WithCwd(dir)}
}

// validFiles lists the Sandboxfiles that must load without diagnostics, by golden name.
func validFiles(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	examples, _ := filepath.Glob("../examples/*/Sandboxfile")
	for _, f := range examples {
		out["example-"+filepath.Base(filepath.Dir(f))] = f
	}
	valid, _ := filepath.Glob("../testdata/lang/valid/*.sbx")
	for _, f := range valid {
		out[strings.TrimSuffix(filepath.Base(f), ".sbx")] = f
	}
	if len(out) == 0 {
		t.Fatal("no valid Sandboxfiles found")
	}
	return out
}

type goldenEdge struct {
	From, To, Origin, At string
}

type goldenNetwork struct {
	Name, Subnet, At string
}

type goldenVolume struct {
	Name, At string
}

type goldenConfig struct {
	File      string
	Project   struct{ Name, Driver string }
	Networks  []goldenNetwork
	Volumes   []goldenVolume `json:",omitempty"`
	Sandboxes []*Sandbox
	Edges     []goldenEdge
	VarFiles  []string `json:",omitempty"`
	ReadFiles []string `json:",omitempty"`
}

func rangeString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", filepath.Base(r.Filename), r.Start.Line, r.Start.Column)
}

// goldenJSON renders cfg without absolute paths, so the files are the same on every machine.
func goldenJSON(t testing.TB, cfg *Config) []byte {
	t.Helper()
	g := goldenConfig{File: cfg.File, Sandboxes: cfg.Sandboxes, VarFiles: cfg.VarFiles, ReadFiles: cfg.ReadFiles}
	g.Project.Name, g.Project.Driver = cfg.Project.Name, cfg.Project.Driver
	for _, n := range cfg.Networks {
		g.Networks = append(g.Networks, goldenNetwork{n.Name, n.Subnet.String(), rangeString(n.Range)})
	}
	for _, v := range cfg.Volumes {
		g.Volumes = append(g.Volumes, goldenVolume{v.Name, rangeString(v.Range)})
	}
	for _, e := range cfg.Edges {
		g.Edges = append(g.Edges, goldenEdge{e.From, e.To, e.Origin, rangeString(e.Range)})
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(cfg.Dir), []byte("$ROOT"))
	return append(b, '\n')
}

// layoutRE finds the OCI layouts a Sandboxfile names relative to its directory.
var layoutRE = regexp.MustCompile(`oci-layout:\./([A-Za-z0-9_./-]+?)[:@"]`)

// stageExample copies an example into a temporary directory of the same name, with a stand-in
// OCI layout wherever it names one its Makefile builds (image/ is not committed), so that the
// golden test does not depend on make having run. It returns the copy's Sandboxfile.
func stageExample(t *testing.T, sandboxfile string) string {
	t.Helper()
	src := filepath.Dir(sandboxfile)
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir() && (rel == "image" || rel == ".sbx"):
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(sandboxfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range layoutRE.FindAllStringSubmatch(string(text), -1) {
		dir := filepath.Join(dst, m[1])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, content := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Join(dst, filepath.Base(sandboxfile))
}

func TestGolden(t *testing.T) {
	for name, path := range validFiles(t) {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "example-") {
				path = stageExample(t, path)
			}
			path, _ := filepath.Abs(path)
			cfg, diags := Load(path, testOpts(filepath.Dir(path))...)
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", renderDiags(cfg, diags))
			}
			got := goldenJSON(t, cfg)
			golden := filepath.Join("..", "testdata", "lang", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./lang -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("resolved config differs from %s (run go test ./lang -update after checking):\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

func renderDiags(cfg *Config, diags hcl.Diagnostics) string {
	var buf bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&buf, cfg.Sources, 100, false)
	_ = w.WriteDiagnostics(diags)
	return buf.String()
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, a, b))
		}
		if len(out) > 20 {
			break
		}
	}
	return strings.Join(out, "\n")
}

var markerRE = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*([^#]*[^#\s])`)

type marker struct {
	line     int
	severity hcl.DiagnosticSeverity
	text     string
	hit      bool
}

// TestDiagnostics loads every fixture in testdata/lang/diagnostics and checks that each
// diagnostic is announced by a "# ERROR: <summary substring>" (or WARNING) comment on the line
// where its subject starts, and that every such comment is matched.
func TestDiagnostics(t *testing.T) {
	files, _ := filepath.Glob("../testdata/lang/diagnostics/*.sbx")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".sbx"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var markers []*marker
			for i, line := range strings.Split(string(src), "\n") {
				for _, m := range markerRE.FindAllStringSubmatch(line, -1) {
					sev := hcl.DiagError
					if m[1] == "WARNING" {
						sev = hcl.DiagWarning
					}
					markers = append(markers, &marker{line: i + 1, severity: sev, text: m[2]})
				}
			}
			if len(markers) == 0 {
				t.Fatal("fixture has no markers")
			}
			path, _ := filepath.Abs(path)
			cfg, diags := Load(path, testOpts(filepath.Dir(path))...)
			if cfg == nil || cfg.File == "" || cfg.Sources == nil {
				t.Fatal("Load must return a Config with File and Sources")
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a subject: %s: %s", d.Summary, d.Detail)
					continue
				}
				found := false
				for _, m := range markers {
					if m.line == d.Subject.Start.Line && m.severity == d.Severity && strings.Contains(d.Summary, m.text) {
						m.hit, found = true, true
					}
				}
				if !found {
					t.Errorf("unexpected diagnostic at line %d: %s", d.Subject.Start.Line, renderDiags(cfg, hcl.Diagnostics{d}))
				}
			}
			for _, m := range markers {
				if !m.hit {
					t.Errorf("line %d: expected %s %q, not reported", m.line, sevName(m.severity), m.text)
				}
			}
			if t.Failed() {
				t.Logf("all diagnostics:\n%s", renderDiags(cfg, diags))
			}
		})
	}
}

func sevName(s hcl.DiagnosticSeverity) string {
	if s == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

// sortedDiagSummaries is a helper for unit tests.
func diagSummaries(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.Summary)
	}
	sort.Strings(out)
	return out
}
