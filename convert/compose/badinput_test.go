package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/lang"
)

// yamlBomb is the billion laughs: nine levels of nine aliases, 9^9 strings once expanded.
func yamlBomb() string {
	var b strings.Builder
	b.WriteString("x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString("x-" + n + ": &" + n + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	b.WriteString("services:\n  web:\n    image: alpine\n    command: *i\n")
	return b.String()
}

// TestBadInput: what a user may point sbx import at by mistake, or an attacker on purpose,
// gets a clear error and never a panic or a hang.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // all in the error
	}{
		{"yaml bomb", yamlBomb(), []string{"load compose.yaml"}},
		{"not yaml", "services: [\n", []string{"load compose.yaml", "yaml"}},
		{"not a mapping", "- a\n- b\n", []string{"load compose.yaml"}},
		{"services of the wrong type", "services: 3\n", []string{"load compose.yaml", "services must be a mapping"}},
		{"ports of the wrong type", "services:\n  a:\n    image: alpine\n    ports: {a: b}\n", []string{"load compose.yaml", "ports"}},
		{"image of the wrong type", "services:\n  a:\n    image: [1, 2]\n", []string{"load compose.yaml", "image"}},
		{"cpus not a number", "services:\n  a:\n    image: alpine\n    cpus: lots\n", []string{"load compose.yaml", "cpus"}},
		{"unknown key", "services:\n  a:\n    image: alpine\n    imagee: alpine\n", []string{"load compose.yaml", "imagee"}},
		{"dependency cycle", "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", []string{"load compose.yaml", "cycle"}},
		{"depends on an unknown service", "services:\n  a:\n    image: x\n    depends_on: [nope]\n", []string{"load compose.yaml", "nope"}},
		{"no services", "volumes: {}\n", []string{"nothing to import"}},
		{"empty", "", []string{"compose.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := ImportBytes(context.Background(), filepath.Join(dir, "compose.yaml"), []byte(tc.data), WithEnviron(nil))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), "panic") {
				t.Errorf("error shows Go internals: %v", err)
			}
		})
	}
}

// TestLargeFile: a 10 MB file is refused before it is parsed.
func TestLargeFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	big := "services:\n  a:\n    image: alpine\n    environment:\n" + strings.Repeat("      K: \""+strings.Repeat("v", 80)+"\"\n", 10<<20/90)
	if err := os.WriteFile(file, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Import(context.Background(), []string{file}, WithEnviron(nil))
	if !errors.Is(err, convert.ErrTooLarge) || !strings.Contains(err.Error(), "compose.yaml") || !strings.Contains(err.Error(), "at most 4 MiB") {
		t.Fatalf("err = %v", err)
	}
	_, err = ImportBytes(context.Background(), file, []byte(big), WithEnviron(nil))
	if !errors.Is(err, convert.ErrTooLarge) {
		t.Fatalf("ImportBytes: err = %v", err)
	}
}

// FuzzImport feeds arbitrary bytes to the import entry point: it may fail, never panic, and
// whatever it returns without error is a Sandboxfile that loads.
func FuzzImport(f *testing.F) {
	for _, tc := range goldenCases {
		if data, err := os.ReadFile(filepath.Join("testdata", tc.dir, "docker-compose.yml")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(yamlBomb()))
	f.Add([]byte("services:\n  a:\n    image: alpine\n    ports: [\"1-3:4-6\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		res, err := ImportBytes(context.Background(), filepath.Join(dir, "compose.yaml"), data, WithEnviron(nil))
		if err != nil {
			return
		}
		src := res.Bytes()
		path := filepath.Join(dir, "Sandboxfile")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, diags := lang.Load(path, lang.WithCwd(dir), lang.WithEnviron(nil)); diags.HasErrors() {
			t.Fatalf("imported Sandboxfile does not load: %s\n%s", diags.Error(), src)
		}
	})
}
