// Command sbx runs declarative local sandboxes described by a Sandboxfile.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

// cli is the whole command line: global flags plus one field per command, each declared in
// its own *_cmd.go file.
type cli struct {
	Globals

	Init     initCmd     `cmd:"" help:"Write a commented starter Sandboxfile in the current directory."`
	Validate validateCmd `cmd:"" help:"Check the Sandboxfile and print every problem with its location."`
	Fmt      fmtCmd      `cmd:"" help:"Rewrite Sandboxfiles in canonical format."`
	Graph    graphCmd    `cmd:"" help:"Print the dependency graph of the sandboxes as DOT (pipe it to 'dot -Tsvg')."`
	Plan     planCmd     `cmd:"" help:"Show what 'sbx up' would change, and why, without changing anything."`
	Version  versionCmd  `cmd:"" help:"Print the version of sbx."`
}

const description = `sbx runs sandboxes declared in a Sandboxfile (HCL): lightweight microVMs booted from
OCI images, with mounts, ports, network scopes and dependencies. 'sbx up' applies only the
difference between the file and what runs.

Start with 'sbx init', edit the Sandboxfile, then 'sbx validate' and 'sbx plan'.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the chosen command, returning the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("sbx"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: false}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code; panic(exitPanic{}) }),
		kong.Vars{"version": version},
	)
	if err != nil {
		fmt.Fprintln(stderr, "sbx:", err)
		return 1
	}
	code, done := parseAndRun(parser, &c, args, stdout, stderr)
	if done {
		return code
	}
	return exit
}

type exitPanic struct{}

// parseAndRun isolates kong's Exit callback (help, usage errors) behind a recover so that run
// stays testable in-process.
func parseAndRun(parser *kong.Kong, c *cli, args []string, stdout, stderr io.Writer) (code int, done bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); !ok {
				panic(r)
			}
			done = false
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		parser.Errorf("%s", err)
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			_ = pe.Context.PrintUsage(true)
		}
		return 1, true
	}
	a, err := newApp(&c.Globals, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1, true
	}
	err = kctx.Run(a)
	return a.exitCode(err), true
}
