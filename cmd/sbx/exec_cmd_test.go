package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/runtime/spec"
)

// TestExecCommandsBadInput: exec, shell, cp and run refuse bad input with one line saying
// what to do, before reaching any sandbox; "sbx exe" suggests exec.
func TestExecCommandsBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte("sandbox \"web\" {\n  image = \"busybox\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exe", "web"}, `sbx: unknown command "exe": did you mean exec?`},
		{[]string{"exec", "web"}, "no command: sbx exec web -- PROGRAM [ARG...] (or 'sbx shell web' for a shell)"},
		{[]string{"exec", "-w", "tmp", "web", "--", "pwd"}, "-w tmp: the working directory must be an absolute path in the sandbox"},
		{[]string{"exec", "-t", "web", "--", "sh"}, "-t needs stdin to be a terminal"},
		{[]string{"exec", "web", "--", "true"}, `no such sandbox "web" in this project ('sbx up' creates the sandboxes of the Sandboxfile)`},
		{[]string{"shell", "web"}, `no such sandbox "web" in this project`},
		{[]string{"cp", "a", "b"}, "neither a nor b names a sandbox: write SANDBOX:PATH on one side"},
		{[]string{"cp", "a", "web:/tmp"}, `no such sandbox "web" in this project`},
		{[]string{"run"}, "name a declared sandbox (sbx run web -- CMD...) or an image (sbx run --image REF -- CMD...)"},
		{[]string{"run", "db", "--", "true"}, `no sandbox "db" in the Sandboxfile (it declares web): sbx run NAME -- CMD, or sbx run --image REF -- CMD`},
		{[]string{"run", "--rm=false", "web"}, "one-off sandboxes are always removed"},
	} {
		_, errs, code := runIn(t, dir, tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") > 2 {
			t.Errorf("sbx %s: exit %d, stderr:\n%s\nwant %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
}

func TestShellCandidates(t *testing.T) {
	rs := &spec.RunSpec{Process: spec.Process{Env: []string{"PATH=/bin", "SHELL=/bin/zsh"}}}
	if got := shellCandidates(rs, nil); strings.Join(got, " ") != "/bin/zsh /bin/bash /bin/sh" {
		t.Errorf("with $SHELL: %v", got)
	}
	if got := shellCandidates(rs, []string{"SHELL=/bin/sh"}); strings.Join(got, " ") != "/bin/sh /bin/bash" {
		t.Errorf("with -e SHELL=/bin/sh: %v", got)
	}
	if got := shellCandidates(&spec.RunSpec{}, nil); strings.Join(got, " ") != "/bin/bash /bin/sh" {
		t.Errorf("without $SHELL: %v", got)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []string{"A=x", "C=3", "B="})
	if strings.Join(got, " ") != "PATH=/bin A=x B= C=3" {
		t.Errorf("mergeEnv: %v", got)
	}
}
