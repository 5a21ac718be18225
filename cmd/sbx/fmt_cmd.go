package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/pmezard/go-difflib/difflib"

	"github.com/sbx-dev/sbx/runtime/diskfile"
)

type fmtCmd struct {
	Check bool     `help:"Change nothing; exit 1 if any file is not formatted."`
	Diff  bool     `help:"Print the changes as a unified diff."`
	Files []string `arg:"" optional:"" help:"Files to format (default: the Sandboxfile and *.sbxvars.hcl files beside it)." type:"path"`
}

func (c *fmtCmd) Run(a *app) error {
	files := c.Files
	if len(files) == 0 {
		path, err := a.sandboxfile()
		if err != nil {
			return err
		}
		files = append(files, path)
		extra, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.sbxvars.hcl"))
		files = append(files, extra...)
	}
	unformatted := 0
	for _, f := range files {
		changed, err := c.one(a, f)
		if err != nil {
			return err
		}
		if changed {
			unformatted++
		}
	}
	if c.Check && unformatted > 0 {
		return exitError{1}
	}
	return nil
}

// one formats a single file and reports whether it was (or would be) changed.
func (c *fmtCmd) one(a *app, path string) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("fmt: %w", err)
	}
	// Refuse to format what does not parse: hclwrite would happily keep the garbage.
	name := displayPath(path)
	if f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos); diags.HasErrors() {
		writeDiagnostics(a.stderr, map[string]*hcl.File{name: f}, diags, a.ecolor)
		return false, exitError{1}
	}
	out := hclwrite.Format(src)
	if bytes.Equal(src, out) {
		return false, nil
	}
	if c.Diff {
		d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(src)), B: difflib.SplitLines(string(out)),
			FromFile: name, ToFile: name + " (formatted)", Context: 3,
		})
		fmt.Fprint(a.stdout, d)
	}
	if c.Check {
		if !c.Diff {
			fmt.Fprintln(a.stdout, name)
		}
		return true, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if err := diskfile.WriteAtomic(path, out, info.Mode().Perm()); err != nil {
		return false, fmt.Errorf("fmt: %w", err)
	}
	if !c.Diff {
		fmt.Fprintln(a.stdout, name)
	}
	return true, nil
}

// displayPath shows path relative to the working directory when it lies below it.
func displayPath(path string) string {
	cwd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(cwd, path); err == nil && !filepath.IsAbs(r) && r != ".." && !bytes.HasPrefix([]byte(r), []byte("../")) {
		return r
	}
	return path
}
