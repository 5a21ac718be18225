// Command sbx-convert is the part of sbx that imports Compose files: `sbx import compose`
// runs it. It is a program of its own because compose-go's JSON schema and reference
// grammar cost about 8 ms of initialisation, which every other sbx command would pay.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/compose"
)

type cli struct {
	Compose composeCmd `cmd:"" help:"Turn Compose files (docker-compose.yml and its overrides) into a Sandboxfile."`
}

type composeCmd struct {
	Files            []string `arg:"" optional:"" name:"file" help:"Compose files, merged in order as docker compose -f does (default: compose.yaml or docker-compose.yml here, and its override file)." type:"path"`
	File             []string `short:"f" name:"file" help:"A Compose file, as with docker compose -f (repeatable, in order, before the FILE arguments)." placeholder:"FILE" type:"path"`
	Profile          []string `help:"Activate a Compose profile (repeatable; default: COMPOSE_PROFILES)." placeholder:"NAME"`
	EnvFile          []string `sep:"none" help:"Read variables for interpolation from FILE instead of .env (repeatable)." placeholder:"FILE" type:"path"`
	ProjectName      string   `help:"The Compose project name (default: the file's name: key, or the directory's name)." placeholder:"NAME"`
	ProjectDirectory string   `help:"The Compose project directory (default: the first file's directory)." placeholder:"DIR" type:"path"`
	Output           string   `short:"o" help:"Write the Sandboxfile to FILE instead of standard output." placeholder:"FILE" type:"path"`
	Force            bool     `help:"Overwrite FILE when it exists."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("sbx import"),
		kong.Description("Import a Compose project as a Sandboxfile."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code; panic(exitPanic{}) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "sbx:", err)
		return 1
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitPanic); !ok {
					panic(r)
				}
				code = exit
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			fmt.Fprintf(stderr, "sbx: %v\n", err)
			return 1
		}
		if err := kctx.Run(&streams{stdout: stdout, stderr: stderr}); err != nil {
			fmt.Fprintf(stderr, "%s %v\n", paint(stderr, "\x1b[1;31m", "Error:"), err)
			return 1
		}
		return 0
	}()
	return code
}

type exitPanic struct{}

// streams are where a command writes.
type streams struct{ stdout, stderr io.Writer }

// Run imports the files and writes the Sandboxfile.
func (c *composeCmd) Run(s *streams) error {
	stdout, stderr := s.stdout, s.stderr
	files := append(append([]string{}, c.File...), c.Files...)
	if len(files) == 0 {
		var err error
		if files, err = defaultComposeFiles(); err != nil {
			return err
		}
	}
	out := convert.Output{Path: c.Output, Force: c.Force, Stdout: stdout, Stderr: stderr, Warning: paint(stderr, "\x1b[33m", "Warning:")}
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
	dir, err := out.Dir()
	if err != nil {
		return err
	}
	opts = append(opts, compose.WithOutputDir(dir))
	// compose-go reports some problems (an unset variable) through logrus: say them the way
	// sbx says warnings.
	logrus.SetOutput(stderr)
	logrus.SetFormatter(warningFormatter{prefix: out.Warning})
	res, err := compose.Import(context.Background(), files, opts...)
	if res == nil {
		return fmt.Errorf("import: %w", err)
	}
	return out.Write(res.File.Bytes(), len(res.File.Sandboxes), res.Notes, err)
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
				abs, err := filepath.Abs(n)
				if err != nil {
					return nil, err
				}
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
type warningFormatter struct{ prefix string }

func (f warningFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte(f.prefix + " " + e.Message + "\n"), nil
}

// paint colours s for a terminal, unless NO_COLOR is set.
func paint(w io.Writer, code, s string) string {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || !term.IsTerminal(int(f.Fd())) {
		return s
	}
	return code + s + "\x1b[0m"
}
