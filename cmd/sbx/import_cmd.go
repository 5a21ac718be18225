package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/sirupsen/logrus"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/compose"
	"github.com/sbx-dev/sbx/convert/microsandbox"
	"github.com/sbx-dev/sbx/convert/sandboxfile"
)

type importCmd struct {
	Compose      importComposeCmd      `cmd:"" help:"Turn Compose files (docker-compose.yml and its overrides) into a Sandboxfile."`
	Microsandbox importMicrosandboxCmd `cmd:"" help:"Turn a microsandbox Sandboxfile (YAML) into an sbx Sandboxfile."`
}

// importOutput is what both importers share: where the Sandboxfile goes.
type importOutput struct {
	Output string `short:"o" help:"Write the Sandboxfile to FILE instead of standard output." placeholder:"FILE" type:"path"`
	Force  bool   `help:"Overwrite FILE when it exists."`
}

type importComposeCmd struct {
	Files            []string `arg:"" optional:"" name:"file" help:"Compose files, merged in order as docker compose -f does; -f FILE works too (default: compose.yaml or docker-compose.yml here, and its override file)." type:"path"`
	Profile          []string `help:"Activate a Compose profile (repeatable; default: COMPOSE_PROFILES)." placeholder:"NAME"`
	EnvFile          []string `sep:"none" help:"Read variables for interpolation from FILE instead of .env (repeatable)." placeholder:"FILE" type:"path"`
	ProjectName      string   `help:"The Compose project name (default: the file's name: key, or the directory's name)." placeholder:"NAME"`
	ProjectDirectory string   `help:"The Compose project directory (default: the first file's directory)." placeholder:"DIR" type:"path"`
	importOutput
}

func (c *importComposeCmd) Run(a *app, kctx *kong.Context) error {
	files := append(composeFileFlags(kctx.Args), c.Files...)
	if len(files) == 0 {
		var err error
		if files, err = defaultComposeFiles(); err != nil {
			return err
		}
	}
	opts := []compose.Option{compose.WithProfiles(c.Profile...)}
	if len(c.EnvFile) > 0 {
		opts = append(opts, compose.WithEnvFiles(c.EnvFile...))
	}
	if c.ProjectName != "" {
		opts = append(opts, compose.WithProjectName(c.ProjectName))
	}
	if c.ProjectDirectory != "" {
		opts = append(opts, compose.WithWorkingDir(c.ProjectDirectory))
	}
	outDir, err := c.outDir()
	if err != nil {
		return err
	}
	opts = append(opts, compose.WithOutputDir(outDir))
	// compose-go reports some problems (an unset variable) through logrus: say them the way
	// sbx says warnings.
	logrus.SetOutput(a.stderr)
	logrus.SetFormatter(warningFormatter{})
	res, err := compose.Import(context.Background(), files, opts...)
	if res == nil {
		return fmt.Errorf("import: %w", err)
	}
	return c.write(a, res.File, res.Notes, err)
}

type importMicrosandboxCmd struct {
	File string `arg:"" optional:"" name:"file" help:"The microsandbox Sandboxfile (YAML; default: Sandboxfile here)." type:"path" default:"Sandboxfile"`
	importOutput
}

func (c *importMicrosandboxCmd) Run(a *app) error {
	outDir, err := c.outDir()
	if err != nil {
		return err
	}
	res, err := microsandbox.Import(c.File, microsandbox.WithOutputDir(outDir))
	if res == nil {
		return fmt.Errorf("import: %w", err)
	}
	return c.write(a, res.File, res.Notes, err)
}

// outDir is the directory the Sandboxfile is written to: host paths in it are relative to it.
func (o *importOutput) outDir() (string, error) {
	if o.Output != "" {
		return filepath.Dir(o.Output), nil
	}
	return os.Getwd()
}

// write prints the notes on stderr, one line each, and writes the Sandboxfile unless nothing
// usable came out (importErr), which is then the error.
func (o *importOutput) write(a *app, f *sandboxfile.File, notes []convert.Note, importErr error) error {
	for _, n := range notes {
		fmt.Fprintf(a.stderr, "%s %s\n", a.paint(a.ecolor, yellow, "Warning:"), n)
	}
	if importErr != nil {
		return fmt.Errorf("import: %w", importErr)
	}
	src := f.Bytes()
	if o.Output == "" {
		_, err := a.stdout.Write(src)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(o.Output, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists: sbx import never overwrites a file (use --force to replace it, or -o another file)", displayPath(o.Output))
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if _, err := file.Write(src); err != nil {
		file.Close()
		return fmt.Errorf("import: write %s: %w", displayPath(o.Output), err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("import: write %s: %w", displayPath(o.Output), err)
	}
	fmt.Fprintf(a.stderr, "Wrote %s (%s", displayPath(o.Output), plural(len(f.Sandboxes), "sandbox", "sandboxes"))
	if len(notes) > 0 {
		fmt.Fprintf(a.stderr, ", %s listed at its top", plural(len(notes), "warning", "warnings"))
	}
	fmt.Fprintln(a.stderr, "). Next: sbx validate, then sbx plan.")
	return nil
}

// composeFileFlags are the files named with -f or --file after "compose": docker compose
// users write sbx import compose -f a.yml -f b.yml, and sbx's global -f (the Sandboxfile, which
// import does not read) keeps only the last one, so they are taken from the command line as
// written, in order.
func composeFileFlags(args []string) []string {
	var out []string
	seen := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out
		case a == "compose":
			seen = true
		case !seen:
		case (a == "-f" || a == "--file") && i+1 < len(args):
			out = append(out, args[i+1])
			i++
		case strings.HasPrefix(a, "--file="):
			out = append(out, strings.TrimPrefix(a, "--file="))
		case strings.HasPrefix(a, "-f") && len(a) > 2:
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(a, "-f"), "="))
		}
	}
	return out
}

// defaultComposeFiles finds the Compose file of the working directory and its override file,
// by the names docker compose looks for.
func defaultComposeFiles() ([]string, error) {
	var files []string
	for _, set := range [][]string{
		{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"},
		{"compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"},
	} {
		for _, n := range set {
			if st, err := os.Stat(n); err == nil && st.Mode().IsRegular() {
				abs, _ := filepath.Abs(n)
				files = append(files, abs)
				break
			}
		}
		if len(files) == 0 {
			return nil, errors.New("no Compose file here (compose.yaml or docker-compose.yml): name the file, like sbx import compose path/to/docker-compose.yml")
		}
	}
	return files, nil
}

// warningFormatter prints compose-go's log entries as sbx prints warnings.
type warningFormatter struct{}

func (warningFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte("Warning: " + e.Message + "\n"), nil
}
