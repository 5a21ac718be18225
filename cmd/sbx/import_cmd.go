package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/microsandbox"
)

type importCmd struct {
	Compose      importComposeCmd      `cmd:"" passthrough:"" help:"Turn Compose files (docker-compose.yml and its overrides) into a Sandboxfile ('sbx import compose --help' lists its flags)."`
	Microsandbox importMicrosandboxCmd `cmd:"" help:"Turn a microsandbox Sandboxfile (YAML) into an sbx Sandboxfile."`
}

// importComposeCmd hands its arguments to sbx-convert, installed next to sbx: compose-go's
// initialisation (its JSON schema, ~8 ms) stays out of every other sbx command.
type importComposeCmd struct {
	Args []string `arg:"" optional:"" passthrough:"all" help:"Compose files and flags: -f FILE, --profile, --env-file, --project-name, --project-directory, -o FILE, --force."`
}

func (c *importComposeCmd) Run(a *app) error {
	exe, err := findHelper("sbx-convert", "SBX_CONVERT")
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"compose"}, c.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, a.stdout, a.stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{ee.ExitCode()}
		}
		return fmt.Errorf("import compose: run %s: %w", exe, err)
	}
	return nil
}

// findHelper finds one of sbx's helper programs: $env, else next to the sbx binary (as make
// install puts it), else in ../libexec/sbx, else on PATH.
func findHelper(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		for _, c := range []string{filepath.Join(filepath.Dir(exe), name), filepath.Join(filepath.Dir(exe), "..", "libexec", "sbx", name)} {
			if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
				return c, nil
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to sbx or on PATH: install it with make install (or point %s at it)", name, env)
}

type importMicrosandboxCmd struct {
	File   string `arg:"" optional:"" name:"file" help:"The microsandbox Sandboxfile (YAML; default: Sandboxfile here)." type:"path" default:"Sandboxfile"`
	Output string `short:"o" help:"Write the Sandboxfile to FILE instead of standard output." placeholder:"FILE" type:"path"`
	Force  bool   `help:"Overwrite FILE when it exists."`
}

func (c *importMicrosandboxCmd) Run(a *app) error {
	out := convert.Output{Path: c.Output, Force: c.Force, Stdout: a.stdout, Stderr: a.stderr, Warning: a.paint(a.ecolor, yellow, "Warning:")}
	dir, err := out.Dir()
	if err != nil {
		return err
	}
	res, err := microsandbox.Import(c.File, microsandbox.WithOutputDir(dir))
	if res == nil {
		return fmt.Errorf("import: %w", err)
	}
	return out.Write(res.File.Bytes(), len(res.File.Sandboxes), res.Notes, err)
}
