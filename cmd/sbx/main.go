// Command sbx runs declarative local sandboxes described by a Sandboxfile.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

// cli is the whole command line: global flags plus one field per command, each declared in
// its own *_cmd.go file.
type cli struct {
	Globals

	VersionFlag kong.VersionFlag `name:"version" help:"Print the version of sbx and exit."`

	Init     initCmd     `cmd:"" help:"Write a commented starter Sandboxfile in the current directory."`
	Validate validateCmd `cmd:"" help:"Check the Sandboxfile and print every problem with its location."`
	Fmt      fmtCmd      `cmd:"" help:"Rewrite Sandboxfiles in canonical format."`
	Graph    graphCmd    `cmd:"" help:"Print the dependency graph of the sandboxes as DOT (pipe it to 'dot -Tsvg')."`
	Plan     planCmd     `cmd:"" help:"Show what 'sbx up' would change, and why, without changing anything."`
	Up       upCmd       `cmd:"" help:"Create, replace or start the sandboxes so that they match the Sandboxfile."`
	Down     downCmd     `cmd:"" help:"Stop and remove sandboxes with their writable layers and logs, dependents first."`
	Stop     stopCmd     `cmd:"" help:"Stop sandboxes, keeping their writable layers ('sbx start' starts them again)."`
	Start    startCmd    `cmd:"" help:"Start stopped sandboxes as they last ran."`
	Ps       psCmd       `cmd:"" help:"List the sandboxes of this project and their state."`
	Logs     logsCmd     `cmd:"" help:"Print the console logs of sandboxes (-f to follow)."`
	Restart  restartCmd  `cmd:"" help:"Restart sandboxes as they are, keeping their writable layer."`
	Pull     pullCmd     `cmd:"" help:"Fetch the images of the Sandboxfile ahead of time."`
	Images   imagesCmd   `cmd:"" help:"List the images in the image store."`
	Volumes  volumesCmd  `cmd:"" help:"List the project's named volumes (kept by down, deleted by down --volumes)."`
	Prune    pruneCmd    `cmd:"" help:"Free the image store of what no image or sandbox uses."`
	Version  versionCmd  `cmd:"" help:"Print the version of sbx."`
	Import   importCmd   `cmd:"" help:"Turn a Compose file or a microsandbox Sandboxfile into a Sandboxfile."`
	Export   exportCmd   `cmd:"" help:"Write the sandboxes as manifests for another platform (Kubernetes)."`

	Cp         cpCmd         `cmd:"" help:"Copy files and directories between the host and a running sandbox (SANDBOX:PATH on either side), modes kept."`
	Run        runCmd        `cmd:"" help:"Run a one-off sandbox from a declared one (or --image) with another command, attached to this terminal, removed afterwards."`
	Exec       execCmd       `cmd:"" help:"Run a command in a running sandbox (sbx exec SANDBOX -- CMD...), with its exit code."`
	Shell      shellCmd      `cmd:"" help:"Open the image's shell in a running sandbox ($SHELL, else /bin/bash, else /bin/sh)."`
	Ls         lsCmd         `cmd:"" help:"List the projects on this machine that have sandboxes, with their states."`
	Config     configCmd     `cmd:"" help:"Print the fully resolved configuration: variables applied, defaults filled in, sensitive values masked."`
	Completion completionCmd `cmd:"" help:"Print a shell completion script (bash, zsh or fish)."`

	Supervise superviseCmd `cmd:"" name:"__supervise" hidden:"" help:"Supervise one sandbox (started by sbx up)."`
	VMM       vmmCmd       `cmd:"" name:"__vmm" hidden:"" help:"The libkrun VMM child."`
	NS        nsCmd        `cmd:"" name:"__ns" hidden:"" help:"The namespace child."`
	Man       manCmd       `cmd:"" name:"__man" hidden:"" help:"Write the sbx(1) manual page (make man)."`
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
	parser, err := newParser(&c, stdout, stderr, func(code int) { exit = code; panic(exitPanic{}) })
	if err != nil {
		fmt.Fprintln(stderr, "sbx:", err)
		return 1
	}
	if answered, err := completeCommandLine(parser); answered {
		if err != nil {
			fmt.Fprintln(stderr, "sbx:", err)
			return 1
		}
		return 0
	}
	code, done := parseAndRun(parser, &c, followFlag(args), stdout, stderr)
	if done {
		return code
	}
	return exit
}

// newParser builds the command line's kong model over c; exit is called for help and usage
// errors.
func newParser(c *cli, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("sbx"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: false}),
		kong.Help(help),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.Vars{"version": versionLine()},
	)
}

type exitPanic struct{}

// followFlag lets "sbx logs -f" mean --follow, as in every other logs command, although -f is
// also the global --file: after the word "logs", -f is rewritten to --follow. "sbx -f FILE logs"
// keeps its meaning.
func followFlag(args []string) []string {
	out := append([]string(nil), args...)
	seenLogs := false
	for i, a := range out {
		switch {
		case a == "--":
			return out
		case a == "logs" && !seenLogs:
			seenLogs = true
		case seenLogs && a == "-f":
			out[i] = "--follow"
		}
	}
	return out
}

// help is kong's help, with one meaning of -f per command: after "logs" it is --follow, so
// sbx logs --help shows it there and not on --file (which is written before the command).
func help(options kong.HelpOptions, ctx *kong.Context) error {
	if ctx.Selected() == nil || ctx.Selected().Name != "logs" {
		return kong.DefaultHelpPrinter(options, ctx)
	}
	var b strings.Builder
	out := ctx.Stdout
	ctx.Stdout = &b
	err := kong.DefaultHelpPrinter(options, ctx)
	ctx.Stdout = out
	text := strings.Replace(b.String(), "  -f, --file=PATH ", "      --file=PATH ", 1)
	text = strings.Replace(text, "      --follow ", "  -f, --follow ", 1)
	_, _ = io.WriteString(out, text)
	return err
}

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
		if word, ok := unknownCommand(parser.Model.Node, args); ok {
			fmt.Fprintf(stderr, "sbx: unknown command %q%s\nRun 'sbx --help' for the list of commands.\n", word, suggestCommand(word, parser.Model.Node))
			return 1, true
		}
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
