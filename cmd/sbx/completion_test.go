package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// complete asks the real binary for completions the way the shells' scripts do: COMP_LINE
// set, candidates on stdout, one a line.
func completeLine(t *testing.T, dir, line string) []string {
	t.Helper()
	cmd := exec.Command(sbxBinary(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COMP_LINE="+line, "COMP_POINT="+strconv.Itoa(len(line)), "SBX_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("completing %q: %v\n%s", line, err, errb.String())
	}
	got := strings.Fields(out.String())
	slices.Sort(got)
	return got
}

func TestCompletionCandidates(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "src", "deep")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	sf := "sandbox \"web\" {\n  image = \"x\"\n}\n\nsandbox \"worker\" {\n  image = \"x\"\n}\n\nsandbox \"db\" {\n  image = \"x\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "Sandboxfile"), []byte(sf), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "Sandboxfile"), []byte("sandbox \"api\" {\n  image = \"x\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, line string
		want      []string
	}{
		{dir, "sbx lo", []string{"logs"}},
		{dir, "sbx comp", []string{"completion"}},
		{dir, "sbx completion ", []string{"bash", "fish", "zsh"}},
		{dir, "sbx logs w", []string{"web", "worker"}},
		{dir, "sbx restart ", []string{"db", "web", "worker"}},
		{sub, "sbx down d", []string{"db"}}, // the nearest Sandboxfile, from a subdirectory
		{dir, "sbx -C " + other + " logs ", []string{"api"}},
		{other, "sbx --file " + filepath.Join(dir, "Sandboxfile") + " up w", []string{"web", "worker"}},
		{dir, "sbx ps --js", []string{"--json"}},
		{dir, "sbx --log-level ", []string{"debug", "error", "info", "warn"}},
		{dir, "sbx __", nil}, // hidden commands stay hidden
		{dir, "sbx exec w", []string{"web", "worker"}},
		{dir, "sbx exec -u root w", []string{"web", "worker"}},
		{dir, "sbx exec web w", nil}, // the command line inside is the user's
		{dir, "sbx shell d", []string{"db"}},
	} {
		if got := completeLine(t, tc.dir, tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestCompletionScriptLoadsInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to check the completion script")
	}
	bin := sbxBinary(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, errs, code := runIn(t, t.TempDir(), "completion", shell)
		if code != 0 || !strings.Contains(out, bin) {
			t.Fatalf("completion %s: %d %s\n%s", shell, code, errs, out)
		}
	}
	script, _, _ := runIn(t, t.TempDir(), "completion", "bash")
	path := filepath.Join(t.TempDir(), "sbx.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	out, err := exec.Command(bash, "-c", "source "+path+" && complete -p sbx").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "complete -C ") || !strings.Contains(string(out), bin) {
		t.Fatalf("complete -p sbx after loading the script: %v\n%s", err, out)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		script, _, _ := runIn(t, t.TempDir(), "completion", "zsh")
		zpath := filepath.Join(t.TempDir(), "sbx.zsh")
		if err := os.WriteFile(zpath, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(zsh, "-n", zpath).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	}
	_, errs, code := runIn(t, t.TempDir(), "completion", "tcsh")
	if code != 1 || !strings.Contains(errs, "bash") {
		t.Errorf("completion tcsh: %d %s", code, errs)
	}
}

func TestManPageListsEveryCommand(t *testing.T) {
	page, errs, code := runIn(t, t.TempDir(), "__man")
	if code != 0 || !strings.HasPrefix(page, ".TH SBX 1 ") {
		t.Fatalf("__man: %d %s\n%.200s", code, errs, page)
	}
	var c cli
	k, err := newParser(&c, &bytes.Buffer{}, &bytes.Buffer{}, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range manCommands(k.Model.Node) {
		if !strings.Contains(page, `.SS "sbx `+roffEscape(n.Path())) {
			t.Errorf("the man page lacks command %q", n.Path())
		}
		for _, f := range n.Flags {
			if !f.Hidden && !strings.Contains(page, `\fB\-\-`+roffEscape(f.Name)+`\fR`) {
				t.Errorf("the man page lacks flag --%s of %s", f.Name, n.Path())
			}
		}
	}
	if len(manCommands(k.Model.Node)) < 15 {
		t.Errorf("only %d commands", len(manCommands(k.Model.Node)))
	}
	if strings.Contains(page, "__supervise") {
		t.Error("the man page lists a hidden command")
	}
	// groff renders it without a warning.
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: the page is not rendered")
		return
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
