package planner

import (
	"go/build"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/lang"
)

func TestGraphOrderAndClosure(t *testing.T) {
	// z and a are independent roots; ties go by name, dependencies first.
	cfg := config([]*lang.Sandbox{
		sandbox("z"), sandbox("a"), sandbox("m", dependsOn("z")), sandbox("b", dependsOn("m", "a")),
		sandbox("c", dependsOn("a")),
	}, [2]string{"b", "z"})
	g, err := NewGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Order(), []string{"a", "c", "z", "m", "b"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if got := g.Dependencies("b"); !slices.Equal(got, []string{"a", "m", "z"}) {
		t.Errorf("deps %v", got)
	}
	if got := g.Dependents("a"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("dependents %v", got)
	}
	cl, err := g.Closure([]string{"b"}, false)
	if err != nil || !slices.Equal(cl, []string{"a", "z", "m", "b"}) {
		t.Errorf("closure %v %v", cl, err)
	}
	cl, err = g.Closure([]string{"b", "c", "b"}, true)
	if err != nil || !slices.Equal(cl, []string{"c", "b"}) {
		t.Errorf("no-deps closure %v %v", cl, err)
	}
	if _, err := g.Closure([]string{"mm"}, false); err == nil || err.Error() != `unknown sandbox "mm" (did you mean "m"?)` {
		t.Errorf("unknown: %v", err)
	}
	var dot strings.Builder
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dot.String(), "\t\"b\" -> \"m\";\n") {
		t.Errorf("DOT:\n%s", dot.String())
	}
}

// TestImports keeps the planner pure and low: no machine access of its own, no runtime, OCI,
// process or libkrun code below it.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		switch imp {
		case "os", "os/exec", "net", "syscall", "io/fs", "path/filepath", "unsafe", "golang.org/x/sys/unix":
			t.Errorf("planner imports %s: it must not touch the machine (take it through Machine)", imp)
		}
	}
	out, err := exec.Command("go", "list", "-e", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/sbx-dev/sbx/runtime", "github.com/sbx-dev/sbx/krun", "github.com/sbx-dev/sbx/cmd",
			"github.com/google/go-containerregistry", "github.com/ebitengine/purego",
		} {
			// lang parses image references with go-containerregistry's pure name package.
			if dep == "github.com/google/go-containerregistry/pkg/name" {
				continue
			}
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("planner depends on %s", dep)
			}
		}
	}
}
