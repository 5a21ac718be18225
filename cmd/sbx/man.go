package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// manCmd writes the sbx(1) manual page, generated from the same kong model as --help and
// the completion, so the three never disagree (make man).
type manCmd struct{}

func (manCmd) Run(k *kong.Context) error {
	return writeManPage(k.Stdout, k.Model)
}

// writeManPage renders the manual page of app in roff (man(7) macros).
func writeManPage(w io.Writer, app *kong.Application) error {
	var b strings.Builder
	v := buildVersion()
	fmt.Fprintf(&b, ".TH SBX 1 %q %q \"User Commands\"\n", manDate(), "sbx "+v.Version)
	b.WriteString(".SH NAME\nsbx \\- run declarative local sandboxes described by a Sandboxfile\n")
	b.WriteString(".SH SYNOPSIS\n.B sbx\n[\\fIglobal flags\\fR] \\fIcommand\\fR [\\fIflags\\fR] [\\fIarguments\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffParagraphs(app.Help))
	b.WriteString(".SH GLOBAL FLAGS\n")
	for _, f := range app.Flags {
		if !f.Hidden {
			manFlag(&b, f)
		}
	}
	b.WriteString(".SH COMMANDS\n")
	for _, n := range manCommands(app.Node) {
		fmt.Fprintf(&b, ".SS \"%s\"\n", roffEscape(manSynopsis(n)))
		b.WriteString(roffParagraphs(n.Help))
		if n.Detail != "" {
			b.WriteString(".PP\n")
			b.WriteString(roffParagraphs(n.Detail))
		}
		for _, p := range n.Positional {
			fmt.Fprintf(&b, ".TP\n\\fI%s\\fR\n%s\n", roffEscape(p.Name), roffEscape(p.Help))
		}
		for _, f := range n.Flags {
			if !f.Hidden {
				manFlag(&b, f)
			}
		}
	}
	b.WriteString(`.SH ENVIRONMENT
.TP
.B SBX_DRIVER
The sandbox driver, as \fB\-\-driver\fR.
.TP
.B SBX_HOME
The image store (default: \fI$XDG_DATA_HOME/sbx\fR, i.e. \fI~/.local/share/sbx\fR).
.TP
.B SBX_VAR_\fIname\fR
The value of the Sandboxfile variable \fIname\fR.
.TP
.B NO_COLOR
Never use colours.
.SH FILES
.TP
.I Sandboxfile
The project: sandboxes, networks, variables (HCL).
.TP
.I .sbx/
The project's state, lock, writable layers and console logs, next to the Sandboxfile.
.SH EXIT STATUS
0 on success, 1 on an error, 2 when \fBsbx plan \-\-detailed\-exitcode\fR finds changes.
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// manDate is the page's date: SOURCE_DATE_EPOCH for reproducible builds, else the month of
// generation.
func manDate() string {
	t := time.Now()
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		t = time.Unix(s, 0)
	}
	return t.UTC().Format("January 2006")
}

// manCommands lists the visible commands that run something, depth first, in the order of
// the help.
func manCommands(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if c.Hidden {
			continue
		}
		if len(c.Children) == 0 {
			out = append(out, c)
			continue
		}
		out = append(out, manCommands(c)...)
	}
	return out
}

func manSynopsis(n *kong.Node) string {
	s := "sbx " + n.Path()
	if len(n.Flags) > 0 {
		s += " [flags]"
	}
	for _, p := range n.Positional {
		s += " " + p.Summary()
	}
	return s
}

func manFlag(b *strings.Builder, f *kong.Flag) {
	b.WriteString(".TP\n")
	var names []string
	if f.Short != 0 {
		names = append(names, `\fB\-`+string(f.Short)+`\fR`)
	}
	long := `\fB\-\-` + roffEscape(f.Name) + `\fR`
	if !f.Value.IsBool() && !f.Value.IsCounter() {
		ph := f.PlaceHolder
		if ph == "" {
			ph = strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		}
		long += `=\fI` + roffEscape(ph) + `\fR`
	}
	names = append(names, long)
	b.WriteString(strings.Join(names, ", ") + "\n")
	help := f.Help
	if f.Enum != "" {
		vals := f.EnumSlice()
		sort.Strings(vals)
		help += " One of: " + strings.Join(vals, ", ") + "."
	}
	if f.HasDefault && f.Default != "" && !f.Value.IsBool() {
		help += " Default: " + f.Default + "."
	}
	if len(f.Envs) > 0 {
		help += " Environment: $" + strings.Join(f.Envs, ", $") + "."
	}
	b.WriteString(roffEscape(help) + "\n")
}

// roffParagraphs turns text with blank-line paragraphs and indented lines into roff: plain
// paragraphs are filled, indented lines kept as they are.
func roffParagraphs(text string) string {
	var b strings.Builder
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		lines := strings.Split(para, "\n")
		if strings.HasPrefix(lines[0], " ") {
			b.WriteString(".nf\n")
			for _, l := range lines {
				b.WriteString(roffLine(l) + "\n")
			}
			b.WriteString(".fi\n")
			continue
		}
		for _, l := range lines {
			b.WriteString(roffLine(strings.TrimSpace(l)) + "\n")
		}
	}
	return b.String()
}

// roffLine escapes a line of text, guarding a leading dot or quote that roff would take for
// a request.
func roffLine(s string) string {
	s = roffEscape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}
