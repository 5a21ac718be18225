package compose

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// environ is the shell environment the fixtures are imported with.
var environ = []string{"FROM_SHELL=from the shell", "USER=dev"}

// goldenCases are the fixtures under testdata: real-world-shaped Compose projects.
var goldenCases = []struct {
	name     string // golden file: testdata/<dir>/<name>.golden
	dir      string
	files    []string
	profiles []string
}{
	{name: "webapp", dir: "webapp"},
	{name: "healthchain", dir: "healthchain"},
	{name: "multinet", dir: "multinet"},
	{name: "envfiles", dir: "envfiles"},
	{name: "profiles", dir: "profiles"},
	{name: "profiles-debug", dir: "profiles", profiles: []string{"debug"}},
	{name: "extends", dir: "extends"},
	{name: "override", dir: "override", files: []string{"docker-compose.yml", "docker-compose.override.yml"}},
	{name: "wordpress", dir: "wordpress"},
	{name: "unmapped", dir: "unmapped"},
	{name: "resources", dir: "resources"},
	{name: "monitoring", dir: "monitoring"},
	{name: "batch", dir: "batch"},
}

// TestImportGolden imports every fixture and checks the output against its golden file, that
// it is formatted as sbx fmt writes it, that it loads without errors (sbx validate) and that
// it plans (sbx plan: the static checks pass).
func TestImportGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t, tc.dir)
			files := tc.files
			if files == nil {
				files = []string{"docker-compose.yml"}
			}
			for i, f := range files {
				files[i] = filepath.Join(dir, f)
			}
			res, err := Import(context.Background(), files, WithEnviron(environ), WithProfiles(tc.profiles...))
			if err != nil {
				t.Fatal(err)
			}
			got := res.Bytes()
			golden := filepath.Join("testdata", tc.dir, tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			checkSandboxfile(t, dir, got)
			for _, n := range res.Notes {
				if !strings.Contains(string(got), "#   "+n.String()+"\n") {
					t.Errorf("note %q is not in the header", n)
				}
			}
		})
	}
}

// checkSandboxfile checks that src is formatted, validates, and plans.
func checkSandboxfile(t *testing.T, dir string, src []byte) *lang.Config {
	t.Helper()
	if !bytes.Equal(hclwrite.Format(src), src) {
		t.Errorf("not formatted as sbx fmt writes it")
	}
	path := filepath.Join(dir, "Sandboxfile")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(path, lang.WithCwd(dir), lang.WithEnviron(nil))
	if len(diags) > 0 {
		t.Fatalf("the Sandboxfile does not validate: %s\n%s", diags.Error(), src)
	}
	p, err := planner.Compute(cfg, nil, planner.WithMachine(machine{}))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("plan: %v", err)
	}
	return cfg
}

// machine answers the planner's questions about this machine: paths as they are, and no port
// in use (the host ports of the fixtures are not ours to check here).
type machine struct{}

func (machine) PortInUse(string, int, string) bool { return false }
func (machine) PathExists(p string) bool           { _, err := os.Stat(p); return err == nil }

// copyFixture copies testdata/<name> into a temporary directory of the same base name (the
// project name derives from it) and returns that directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(p, ".golden") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
