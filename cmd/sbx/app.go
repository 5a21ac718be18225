package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"

	"github.com/sbx-dev/sbx/lang"
)

// Globals are the flags every command accepts (design.md §2).
type Globals struct {
	File        string             `short:"f" help:"Path of the Sandboxfile (default: the nearest Sandboxfile in this directory or a parent). Before the command: after 'logs', -f means --follow." default:"Sandboxfile" placeholder:"PATH"`
	Chdir       kong.ChangeDirFlag `short:"C" help:"Change to DIR before doing anything." placeholder:"DIR"`
	Var         []string           `sep:"none" help:"Set a variable, overriding every other source (repeatable)." placeholder:"NAME=VALUE"`
	VarFile     []string           `sep:"none" help:"Read variables from an HCL file of NAME = VALUE lines (repeatable)." placeholder:"FILE"`
	Driver      string             `help:"Sandbox driver: krun (microVMs, the default) or ns (Linux namespaces, for hosts without KVM)." default:"" env:"SBX_DRIVER"`
	LogLevel    string             `help:"Log level: debug, info, warn or error." enum:"debug,info,warn,error" default:"warn"`
	NoColor     bool               `help:"Never use colours (also: NO_COLOR set, or output not a terminal)."`
	LockTimeout time.Duration      `help:"How long to wait for another sbx holding the project's state lock." default:"30s"`
}

// app carries what commands need: output streams, terminal facts, the logger and the
// globals. It is created once per invocation and bound into kong's Run.
type app struct {
	g      *Globals
	stdout io.Writer
	stderr io.Writer
	tty    bool // stdout is a terminal (progress bars)
	color  bool // colours on stdout
	ecolor bool // colours on stderr
	log    *slog.Logger
}

func newApp(g *Globals, stdout, stderr io.Writer) (*app, error) {
	noColor := g.NoColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb"
	a := &app{
		g:      g,
		stdout: stdout,
		stderr: stderr,
		tty:    isTerminal(stdout),
		color:  !noColor && isTerminal(stdout),
		ecolor: !noColor && isTerminal(stderr),
	}
	if g.Driver != "" && !lang.ValidDriver(g.Driver) {
		return nil, fmt.Errorf("--driver (or SBX_DRIVER) %q: use %s", g.Driver, strings.Join(lang.DriverNames(), " or "))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	a.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return a, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitError carries an exit code without printing anything more (the command already said
// why), e.g. validate with errors or plan --detailed-exitcode with changes.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *app) exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(a.stderr, "%s %v\n", a.paint(a.ecolor, red, "Error:"), err)
	return 1
}

// sandboxfile is the absolute path of the Sandboxfile named by -f.
// Without -f, the nearest Sandboxfile in the working directory or a parent is the project's,
// as git and Terraform find theirs, so commands work from a subdirectory.
func (a *app) sandboxfile() (string, error) {
	path, err := filepath.Abs(a.g.File)
	if err != nil {
		return "", fmt.Errorf("the Sandboxfile's path %q: %w", a.g.File, err)
	}
	if a.g.File != lang.DefaultFilename {
		return path, nil
	}
	for dir := filepath.Dir(path); ; {
		candidate := filepath.Join(dir, lang.DefaultFilename)
		if st, err := os.Stat(candidate); err == nil && st.Mode().IsRegular() {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return path, nil // none: the messages name the working directory's
		}
		dir = parent
	}
}

// load reads and evaluates the Sandboxfile. Diagnostics are printed to stderr (warnings
// too); a configuration with errors returns exitError{1}.
func (a *app) load(opts ...lang.Option) (*lang.Config, error) {
	path, err := a.sandboxfile()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no Sandboxfile at %s: run 'sbx init' to write one, or point -f at yours", path)
	}
	vars, err := parseVarFlags(a.g.Var)
	if err != nil {
		return nil, err
	}
	all := append([]lang.Option{lang.WithVars(vars), lang.WithVarFiles(a.g.VarFile)}, opts...)
	cfg, diags := lang.Load(path, all...)
	if len(diags) > 0 {
		a.printDiagnostics(cfg, diags)
	}
	if diags.HasErrors() {
		return cfg, exitError{1}
	}
	return cfg, nil
}

// loadQuiet loads the Sandboxfile without printing anything; for commands that only use it
// when it is there and valid.
func (a *app) loadQuiet() (*lang.Config, error) {
	path, err := a.sandboxfile()
	if err != nil {
		return nil, err
	}
	vars, err := parseVarFlags(a.g.Var)
	if err != nil {
		return nil, err
	}
	cfg, diags := lang.Load(path, lang.WithVars(vars), lang.WithVarFiles(a.g.VarFile))
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, nil
}

func parseVarFlags(flags []string) (map[string]string, error) {
	vars := make(map[string]string, len(flags))
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--var %q: expected NAME=VALUE", f)
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, nil
}

// printDiagnostics writes diagnostics to stderr with their source lines and an underline, file
// names shown relative to the working directory so they read "on Sandboxfile line 12".
func (a *app) printDiagnostics(cfg *lang.Config, diags hcl.Diagnostics) {
	files, diags := relativeDiagnostics(cfg, diags)
	writeDiagnostics(a.stderr, files, diags, a.ecolor)
}

// relativeDiagnostics rewrites the file names in diags (and the file map that provides their
// source lines) relative to the working directory.
func relativeDiagnostics(cfg *lang.Config, diags hcl.Diagnostics) (map[string]*hcl.File, hcl.Diagnostics) {
	cwd, _ := os.Getwd()
	rel := func(name string) string {
		if r, err := filepath.Rel(cwd, name); err == nil && filepath.IsAbs(name) && !strings.HasPrefix(r, "..") {
			return r
		}
		return name
	}
	files := map[string]*hcl.File{}
	if cfg != nil {
		for name, f := range cfg.Sources {
			files[rel(name)] = f
		}
	}
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		if c.Subject != nil {
			s := *c.Subject
			s.Filename = rel(s.Filename)
			c.Subject = &s
		}
		if c.Context != nil {
			s := *c.Context
			s.Filename = rel(s.Filename)
			c.Context = &s
		}
		out[i] = &c
	}
	return files, out
}

const (
	red    = "31"
	green  = "32"
	yellow = "33"
	cyan   = "36"
	bold   = "1"
)

// paint wraps s in an ANSI colour when on is true.
func (a *app) paint(on bool, code, s string) string {
	if !on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
