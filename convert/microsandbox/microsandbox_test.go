package microsandbox

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type machine struct{}

func (machine) PortInUse(string, int, string) bool { return false }
func (machine) PathExists(p string) bool           { _, err := os.Stat(p); return err == nil }

// importFixture copies testdata/<name> away, imports its Sandboxfile into Sandboxfile.sbx
// beside it, checks it against the golden file, and that it is formatted, loads and plans.
func importFixture(t *testing.T, name string) (*lang.Config, []convert.Note) {
	t.Helper()
	src := filepath.Join("testdata", name)
	dir := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(filepath.Join(dir, "Sandboxfile"))
	if err != nil {
		t.Fatal(err)
	}
	got := res.Bytes()
	golden := filepath.Join(src, "sbx.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.ReadFile(golden)
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	if !bytes.Equal(hclwrite.Format(got), got) {
		t.Error("not formatted")
	}
	out := filepath.Join(dir, "out.Sandboxfile")
	if err := os.WriteFile(out, got, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(out, lang.WithCwd(dir), lang.WithEnviron(nil))
	if len(diags) > 0 {
		t.Fatalf("does not validate: %s\n%s", diags.Error(), got)
	}
	p, err := planner.Compute(cfg, nil, planner.WithMachine(machine{}))
	if err != nil || p.Err() != nil {
		t.Fatalf("plan: %v %v", err, p.Err())
	}
	return cfg, res.Notes
}

func hasNote(notes []convert.Note, subject, key, text string) bool {
	for _, n := range notes {
		if n.Subject == subject && n.Key == key && strings.Contains(n.Message, text) {
			return true
		}
	}
	return false
}

func TestImportAgents(t *testing.T) {
	cfg, notes := importFixture(t, "agents")
	a := cfg.Sandbox("agent")
	if a.Image != "microsandbox/python" || a.MemoryMiB != 1024 || a.CPUs != 2 || a.Workdir != "/workspace" {
		t.Errorf("agent = %+v", a)
	}
	if !slices.Equal(a.Entrypoint, []string{"/bin/bash", "-c", "python -m agent --serve"}) || a.Command == nil || len(a.Command) != 0 {
		t.Errorf("start script: entrypoint %q command %q", a.Entrypoint, a.Command)
	}
	if len(a.Mounts) != 1 || a.Mounts[0].Target != "/workspace" || filepath.Base(a.Mounts[0].Source) != "workspace" || !hasNote(notes, "agent", "volumes[1]", "absolute") {
		t.Errorf("mounts = %+v", a.Mounts)
	}
	if len(a.Ports) != 2 || a.Ports[0].Host != 8000 || a.Ports[1].Host != 9229 || a.Ports[1].Guest != 9229 {
		t.Errorf("ports = %+v", a.Ports)
	}
	if a.Env["PYTHONUNBUFFERED"] != "1" || a.Env["API_URL"] != "http://localhost:3000" || len(a.Rlimits) != 1 || a.Rlimits[0].Hard != 4096 {
		t.Errorf("env %v rlimits %v", a.Env, a.Rlimits)
	}
	if !slices.Equal(a.DependsOn, []string{"db"}) || a.Network.Scope != "public" {
		t.Errorf("depends_on %v network %+v", a.DependsOn, a.Network)
	}
	if w := cfg.Sandbox("web"); !slices.Equal(w.Entrypoint, []string{"node", "server.js"}) || w.Network.Scope != "any" {
		t.Errorf("web = %+v", w)
	}
	if s := cfg.Sandbox("sealed"); !strings.HasPrefix(s.Image, "dir:") || s.Network.Scope != "none" {
		t.Errorf("sealed = %+v", s)
	}
	for _, n := range [][3]string{{"", "meta", ""}, {"agent", "scripts.test", "sbx exec agent"}, {"db", "shell", "sbx shell db"}, {"db", "exports", ""}} {
		if !hasNote(notes, n[0], n[1], n[2]) {
			t.Errorf("no note %v in %v", n, notes)
		}
	}
}

func TestImportGroups(t *testing.T) {
	cfg, notes := importFixture(t, "groups")
	if len(cfg.Networks) != 2 || cfg.Networks[0].Name != "backend" || cfg.Networks[0].Subnet.String() != "10.10.0.0/24" {
		t.Errorf("networks = %+v", cfg.Networks)
	}
	if n := cfg.Sandbox("api").Network; n.Scope != "group" || n.Group != "backend" || n.IP.String() != "10.10.0.5" {
		t.Errorf("api network = %+v", n)
	}
	if n := cfg.Sandbox("lonely").Network; n.Scope != "none" || !hasNote(notes, "lonely", "scope", "scope none") {
		t.Errorf("lonely network = %+v, notes %v", n, notes)
	}
	if n := cfg.Sandbox("gateway").Network; n.Group != "backend" || !hasNote(notes, "gateway", "groups.tools", "one group") {
		t.Errorf("gateway network = %+v notes %v", n, notes)
	}
	if !hasNote(notes, "gateway", "colour", "not a microsandbox key") || !hasNote(notes, "api", "groups.backend.network.hostname", "") {
		t.Errorf("notes = %v", notes)
	}
}

func TestBadInput(t *testing.T) {
	bomb := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	for name, tc := range map[string]struct{ data, want string }{
		"bomb":        {bomb, "aliases"},
		"wrong types": {"sandboxes:\n  a:\n    image: alpine\n    memory: lots\n", "line 4"},
		"ports a map": {"sandboxes:\n  a:\n    image: alpine\n    ports: {a: 1}\n", "line 4"},
		"not yaml":    {"sandboxes: [\n", "Sandboxfile"},
		"nothing":     {"sandboxes: {}\n", "nothing to import"},
		"too large":   {strings.Repeat("#", convert.MaxInputSize+1), "too large"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ImportBytes(filepath.Join(t.TempDir(), "Sandboxfile"), []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ImportBytes("Sandboxfile", []byte("sandboxes: {}\n")); !errors.Is(err, ErrNothingUsable) {
		t.Errorf("err = %v", err)
	}
}

// FuzzImport feeds arbitrary bytes to the microsandbox importer: it may fail, never panic, and
// what it returns without error loads.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"agents", "groups"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name, "Sandboxfile")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("sandboxes:\n  a:\n    image: alpine\n    ports: [\"1:2\"]\n    rlimits: [\"RLIMIT_NOFILE=1:2\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		res, err := ImportBytes(filepath.Join(dir, "Sandboxfile"), data)
		if err != nil {
			return
		}
		src := res.Bytes()
		path := filepath.Join(dir, "out.Sandboxfile")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := lang.Load(path, lang.WithCwd(dir), lang.WithEnviron(nil))
		for _, d := range diags {
			// A dir: image names a directory the fuzzer cannot have made.
			if d.Severity == hcl.DiagError && d.Summary != "Missing image source" {
				t.Fatalf("imported Sandboxfile does not load: %s\n%s", diags.Error(), src)
			}
		}
	})
}
