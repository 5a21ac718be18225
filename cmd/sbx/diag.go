package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"
)

// writeDiagnostics prints diagnostics the way sbx validate shows them, with or without colour:
//
//	Error: Unsupported argument
//
//	  on Sandboxfile line 12, in sandbox "db":
//	  12:   cpu = 2
//	        ^^^
//
//	An argument named "cpu" is not expected here. Did you mean "cpus"?
func writeDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	for _, d := range diags {
		label, code := "Error", red
		if d.Severity == hcl.DiagWarning {
			label, code = "Warning", yellow
		}
		fmt.Fprintf(w, "%s %s\n\n", paint(code+";1", label+":"), paint(bold, d.Summary))
		if d.Subject != nil {
			writeSnippet(w, files[d.Subject.Filename], *d.Subject, func(s string) string { return paint(code, s) })
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "%s\n\n", d.Detail)
		}
	}
}

// writeSnippet prints where r is: the file and line, the enclosing block, the source line
// and a caret underline beneath the range (its first line, for a range over several).
func writeSnippet(w io.Writer, f *hcl.File, r hcl.Range, paint func(string) string) {
	where := fmt.Sprintf("  on %s line %d", r.Filename, r.Start.Line)
	if f != nil {
		if ctx := hcled.ContextString(f, r.Start.Byte-1); ctx != "" {
			where += ", in " + ctx
		}
	}
	fmt.Fprintf(w, "%s:\n", where)
	if f == nil {
		fmt.Fprintln(w)
		return
	}
	line := sourceLine(f.Bytes, r.Start.Line)
	prefix := fmt.Sprintf("  %d: ", r.Start.Line)
	fmt.Fprintf(w, "%s%s\n", prefix, line)
	startCol := max(r.Start.Column, 1)
	endCol := r.End.Column
	if r.End.Line != r.Start.Line {
		endCol = utf8.RuneCountInString(line) + 1
	}
	width := max(endCol-startCol, 1)
	// Columns count characters; tabs in the source keep their place in the underline.
	var pad strings.Builder
	for i, ch := range []rune(line) {
		if i >= startCol-1 {
			break
		}
		if ch == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteRune(' ')
		}
	}
	fmt.Fprintf(w, "%s%s%s\n\n", strings.Repeat(" ", len(prefix)), pad.String(), paint(strings.Repeat("^", width)))
}
