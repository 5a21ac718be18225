package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// execCmd runs a process in a running sandbox through its init's control socket.
type execCmd struct {
	execFlags
	Sandbox string   `arg:"" help:"The running sandbox."`
	Command []string `arg:"" optional:"" passthrough:"" name:"command" help:"The program and its arguments (after --)."`
}

// execFlags are the flags exec and shell share.
type execFlags struct {
	Interactive bool     `short:"i" help:"Attach stdin when it is a terminal (a pipe or a file always is, and so is a terminal with a TTY)."`
	TTY         bool     `short:"t" help:"Give the process a terminal (default when stdin and stdout are terminals)."`
	NoTTY       bool     `short:"T" name:"no-tty" help:"Never give the process a terminal."`
	User        string   `short:"u" help:"Run as USER (name, uid, uid:gid or name:group; default: the sandbox's user)." placeholder:"USER"`
	Workdir     string   `short:"w" help:"Working directory in the sandbox (default: the sandbox's)." placeholder:"DIR"`
	Env         []string `short:"e" sep:"none" help:"Set an environment variable (NAME=VALUE, or NAME to pass this one's; repeatable)." placeholder:"NAME=VALUE"`
}

func (c *execCmd) Run(a *app) error {
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return fmt.Errorf("no command: sbx exec %s -- PROGRAM [ARG...] (or 'sbx shell %s' for a shell)", c.Sandbox, c.Sandbox)
	}
	req, err := c.request(a, argv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, _, err := a.dialSandbox(ctx, c.Sandbox)
	if err != nil {
		return err
	}
	defer client.Close()
	code, err := a.attach(ctx, client, c.Sandbox, []sbxinit.ExecRequest{req}, c.stdin(req))
	if err != nil {
		return a.startFailure(c.Sandbox, err)
	}
	return exitCodeError(code)
}

// startFailure prints a process's failed start as the init said it and exits with its code
// (126 not executable, 127 not found, as a shell); other errors are returned as they are.
func (a *app) startFailure(name string, err error) error {
	var re *sbxinit.RemoteError
	if errors.As(err, &re) && re.Code != 0 {
		fmt.Fprintf(a.stderr, "%s %s: %s\n", a.paint(a.ecolor, red, "Error:"), name, re.Msg)
		return exitError{re.Code}
	}
	return err
}

// request builds the exec request of the flags for argv; TTY is decided here.
func (f *execFlags) request(a *app, argv []string) (sbxinit.ExecRequest, error) {
	req := sbxinit.ExecRequest{Argv: argv, Cwd: f.Workdir}
	if f.Workdir != "" && !path.IsAbs(f.Workdir) {
		return req, fmt.Errorf("-w %s: the working directory must be an absolute path in the sandbox", f.Workdir)
	}
	if f.User != "" {
		req.User = &sbxinit.User{Spec: f.User}
	}
	for _, e := range f.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok {
			v, set := os.LookupEnv(e)
			if !set {
				continue // as docker: a NAME that is not set here is left out
			}
			e = e + "=" + v
		}
		if k == "" || strings.ContainsRune(e, 0) {
			return req, fmt.Errorf("-e %q: expected NAME=VALUE", e)
		}
		req.Env = append(req.Env, e)
	}
	switch {
	case f.TTY && f.NoTTY:
		return req, errors.New("-t and -T (--no-tty) contradict each other: give one")
	case f.TTY:
		if !isTerminal(os.Stdin) {
			return req, errors.New("-t needs stdin to be a terminal: drop -t to pipe input")
		}
		req.TTY = true
	case f.NoTTY:
	default:
		req.TTY = isTerminal(os.Stdin) && isTerminal(a.stdout)
	}
	return req, nil
}

// stdin is the process's input: this one when it is a pipe or a file, or a terminal with
// -i or a TTY; nothing (end of file) otherwise, so that 'sbx exec web -- cmd &' is not
// stopped for reading the terminal in the background.
func (f *execFlags) stdin(req sbxinit.ExecRequest) io.Reader {
	if req.TTY || f.Interactive || !isTerminal(os.Stdin) {
		return os.Stdin
	}
	return nil
}

// dialSandbox connects to the init of a running sandbox of this project.
func (a *app) dialSandbox(ctx context.Context, name string) (*sbxinit.Client, *spec.RunSpec, error) {
	dir, err := a.projectDir()
	if err != nil {
		return nil, nil, err
	}
	return runtime.NewProject("", dir).DialSandbox(ctx, name)
}

// exitCodeError is nil for 0, else an exit code without a message (the process said why).
func exitCodeError(code int) error {
	if code == 0 {
		return nil
	}
	return exitError{code}
}

// attach runs the first of reqs that exists in the sandbox (a *sbxinit.RemoteError with
// code 127 moves on to the next) with this terminal: stdin, stdout and stderr, and with
// TTY a real terminal in raw mode whose size follows this one's. Signals sbx receives go to
// the process; the third SIGINT or SIGTERM gives up on it. The terminal's mode is restored
// on every way out. It returns the process's exit code; a start failure is printed as the
// init's *sbxinit.RemoteError (code 126, 127).
func (a *app) attach(ctx context.Context, c *sbxinit.Client, name string, reqs []sbxinit.ExecRequest, stdin io.Reader) (int, error) {
	tty := reqs[0].TTY
	resize := make(chan sbxinit.WindowSize, 1)
	sigs := make(chan syscall.Signal, 4)
	fwd := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
	if tty {
		fd := int(os.Stdin.Fd())
		old, err := term.MakeRaw(fd)
		if err != nil {
			return 0, fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer func() { _ = term.Restore(fd, old) }()
		fwd = append(fwd, syscall.SIGWINCH)
	}
	notify := make(chan os.Signal, 8)
	signal.Notify(notify, fwd...)
	defer signal.Stop(notify)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		fatal := 0
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-notify:
				sig := s.(syscall.Signal)
				if sig == syscall.SIGWINCH {
					if ws, ok := windowSize(); ok {
						select { // only the latest size matters
						case <-resize:
						default:
						}
						resize <- ws
					}
					continue
				}
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					if fatal++; fatal >= 3 {
						cancel()
						return
					}
				}
				select {
				case sigs <- sig:
				default:
				}
			}
		}
	}()
	for i, req := range reqs {
		if tty {
			req.Size, _ = windowSize()
			req.Resize = resize
		}
		req.Signals = sigs
		code, err := c.Exec(ctx, req, stdin, a.stdout, a.stderr)
		var re *sbxinit.RemoteError
		if errors.As(err, &re) && re.Code == exitNotFound && i+1 < len(reqs) {
			continue
		}
		if errors.As(err, &re) {
			return 0, err
		}
		if errors.Is(err, context.Canceled) {
			return 0, fmt.Errorf("gave up on the process in %s after three signals (it may still run there)", name)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return 0, fmt.Errorf("%s stopped while the process ran (%w): 'sbx ps' and 'sbx logs %s' say why", name, err, name)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return code, nil
	}
	return 0, nil // not reached: the last request returns
}

// windowSize is the size of this terminal (stdout's, else stdin's).
func windowSize() (sbxinit.WindowSize, bool) {
	for _, f := range []*os.File{os.Stdout, os.Stdin} {
		if cols, rows, err := term.GetSize(int(f.Fd())); err == nil {
			return sbxinit.WindowSize{Rows: uint16(rows), Cols: uint16(cols)}, true
		}
	}
	return sbxinit.WindowSize{Rows: 24, Cols: 80}, false
}

// exitNotFound is the init's (and a shell's) exit code for a program that is not there.
const exitNotFound = 127
