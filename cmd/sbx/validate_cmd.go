package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"

	"github.com/sbx-dev/sbx/lang"
)

type validateCmd struct {
	JSON bool `help:"Print the diagnostics as JSON (schema: {valid, error_count, warning_count, diagnostics[]})."`
}

func (c *validateCmd) Run(a *app) error {
	if !c.JSON {
		cfg, err := a.load()
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s %s, %s.\n", a.paint(a.color, green, "The Sandboxfile is valid:"),
			plural(len(cfg.Sandboxes), "sandbox", "sandboxes"), plural(len(cfg.Networks), "network", "networks"))
		return nil
	}
	path, err := a.sandboxfile()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no Sandboxfile at %s: run 'sbx init' to write one, or point -f at yours", path)
	}
	vars, err := parseVarFlags(a.g.Var)
	if err != nil {
		return err
	}
	cfg, diags := lang.Load(path, lang.WithVars(vars), lang.WithVarFiles(a.g.VarFile))
	files, diags := relativeDiagnostics(cfg, diags)
	out := validateJSON{Valid: !diags.HasErrors(), Diagnostics: []diagJSON{}}
	for _, d := range diags {
		dj := diagJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			dj.Severity = "warning"
			out.WarningCount++
		} else {
			out.ErrorCount++
		}
		if d.Subject != nil {
			dj.Range = &rangeJSON{
				Filename: d.Subject.Filename,
				Start:    posJSON{d.Subject.Start.Line, d.Subject.Start.Column, d.Subject.Start.Byte},
				End:      posJSON{d.Subject.End.Line, d.Subject.End.Column, d.Subject.End.Byte},
			}
			if f := files[d.Subject.Filename]; f != nil {
				dj.Snippet = sourceLine(f.Bytes, d.Subject.Start.Line)
			}
		}
		out.Diagnostics = append(out.Diagnostics, dj)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if !out.Valid {
		return exitError{1}
	}
	return nil
}

type validateJSON struct {
	Valid        bool       `json:"valid"`
	ErrorCount   int        `json:"error_count"`
	WarningCount int        `json:"warning_count"`
	Diagnostics  []diagJSON `json:"diagnostics"`
}

type diagJSON struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *rangeJSON `json:"range,omitempty"`
	Snippet  string     `json:"snippet,omitempty"`
}

type rangeJSON struct {
	Filename string  `json:"filename"`
	Start    posJSON `json:"start"`
	End      posJSON `json:"end"`
}

type posJSON struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sourceLine returns line n (1-based) of src without its newline.
func sourceLine(src []byte, n int) string {
	line := 1
	start := 0
	for i, b := range src {
		if b != '\n' {
			continue
		}
		if line == n {
			return string(src[start:i])
		}
		line++
		start = i + 1
	}
	if line == n {
		return string(src[start:])
	}
	return ""
}
