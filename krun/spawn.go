package krun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SpawnOption configures [Spawn].
type SpawnOption func(*spawnOptions) error

type spawnOptions struct {
	env         []string
	stdout      io.Writer
	stderr      io.Writer
	logPath     string
	stopTimeout time.Duration
}

// WithChildLog appends the VMM child's stderr (libkrun's log, and whatever a
// crashing libkrun or Go runtime prints) to the file at path, instead of
// [WithChildOutput]'s stderr writer. When the child fails, [Child.Wait]
// returns an [*ExitError] whose Summary is one line drawn from it.
func WithChildLog(path string) SpawnOption {
	return func(o *spawnOptions) error {
		if path == "" {
			return fmt.Errorf("krun.WithChildLog: empty path: %w", ErrInvalidArgument)
		}
		o.logPath = path
		return nil
	}
}

// WithChildEnv sets the VMM child's process environment (default: the
// parent's). Note that a VMConfig with a nil Env passes this environment on to
// the workload.
func WithChildEnv(env []string) SpawnOption {
	return func(o *spawnOptions) error {
		o.env = env
		return nil
	}
}

// WithChildOutput sends the VMM child's stdout and stderr (libkrun's log, and
// the console if VMConfig.ConsoleOutput is empty) to w. Default: discarded.
func WithChildOutput(stdout, stderr io.Writer) SpawnOption {
	return func(o *spawnOptions) error {
		o.stdout, o.stderr = stdout, stderr
		return nil
	}
}

// WithStopTimeout sets how long [Child.Stop] and context cancellation wait
// after SIGTERM before SIGKILL. Default 10s.
func WithStopTimeout(d time.Duration) SpawnOption {
	return func(o *spawnOptions) error {
		if d <= 0 {
			return fmt.Errorf("krun.WithStopTimeout(%v): must be positive: %w", d, ErrInvalidArgument)
		}
		o.stopTimeout = d
		return nil
	}
}

// Child is a running VMM child process.
type Child struct {
	cmd         *exec.Cmd
	stopTimeout time.Duration
	done        chan struct{}
	waitErr     error
	stderr      *tailBuffer
	logPath     string
}

// Spawn starts the VMM child with argv (typically the caller's own binary and
// a hidden command whose main calls [RunChild], e.g. {"/proc/self/exe",
// "__vmm"}), writes cfg to its stdin as JSON, and waits until it reports that
// libkrun is configured. krun_start_enter then runs in the child, never in the
// caller.
//
// The child is tied to ctx: when ctx is done it gets SIGTERM, then SIGKILL
// after the stop timeout. It also gets SIGTERM if the caller's process dies
// (Pdeathsig on Linux). A configuration error reported by the child is
// returned as a [*ConfigError]; a child that exits without reporting yields an
// error with its exit status and the end of its stderr.
func Spawn(ctx context.Context, argv []string, cfg VMConfig, opts ...SpawnOption) (*Child, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("spawn vmm child: empty argv: %w", ErrInvalidArgument)
	}
	o := spawnOptions{stopTimeout: 10 * time.Second}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vm config: %w", err)
	}
	input, err := json.Marshal(&cfg)
	if err != nil {
		return nil, fmt.Errorf("encode vm config: %w", err)
	}

	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	defer rd.Close()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = o.env
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout = o.stdout
	tail := &tailBuffer{max: 16384}
	var logFile *os.File
	switch {
	case o.logPath != "":
		logFile, err = os.OpenFile(o.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			wr.Close()
			return nil, fmt.Errorf("vmm log: %w", err)
		}
		cmd.Stderr = io.MultiWriter(tail, logFile)
	case o.stderr != nil:
		cmd.Stderr = io.MultiWriter(o.stderr, tail)
	default:
		cmd.Stderr = tail
	}
	cmd.ExtraFiles = []*os.File{wr} // fd 3 == ReportFD
	cmd.SysProcAttr = childSysProcAttr()
	if cfg.Overlay != nil {
		// The overlay root is mounted in the child's own mount namespace,
		// so it ends with the child whatever kills it.
		ownMountNamespace(cmd.SysProcAttr)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = o.stopTimeout
	if err := cmd.Start(); err != nil {
		wr.Close()
		if logFile != nil {
			logFile.Close()
		}
		if cfg.Overlay != nil && errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("start vmm child %s in a mount namespace of its own (for the overlay root), which needs root: %w", argv[0], err)
		}
		return nil, fmt.Errorf("start vmm child %s: %w", argv[0], err)
	}
	wr.Close()

	c := &Child{cmd: cmd, stopTimeout: o.stopTimeout, done: make(chan struct{}), stderr: tail, logPath: o.logPath}
	go func() {
		c.waitErr = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(c.done)
	}()

	type result struct {
		r   report
		err error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(rd).ReadBytes('\n')
		if err != nil {
			got <- result{err: err}
			return
		}
		var r report
		if err := json.Unmarshal(line, &r); err != nil {
			got <- result{err: fmt.Errorf("bad report %q: %w", line, err)}
			return
		}
		got <- result{r: r}
	}()

	select {
	case <-ctx.Done():
		// CommandContext signals the child; wait for it to go.
		<-c.done
		return nil, fmt.Errorf("spawn vmm child: %w", ctx.Err())
	case res := <-got:
		switch {
		case res.err == nil && res.r.Status == statusConfigured:
			return c, nil
		case res.err == nil && res.r.Status == statusError:
			<-c.done
			return nil, &ConfigError{
				Func:     res.r.Func,
				Errno:    syscall.Errno(res.r.Errno),
				Message:  res.r.Message,
				ExitCode: cmd.ProcessState.ExitCode(),
				kind:     res.r.Kind,
				facts:    res.r.Facts,
			}
		case res.err == nil:
			c.kill()
			<-c.done
			return nil, fmt.Errorf("vmm child sent unknown status %q", res.r.Status)
		case errors.Is(res.err, io.EOF):
			<-c.done
			return nil, fmt.Errorf("vmm child exited before configuring the VM: %w", c.exitError())
		default:
			c.kill()
			<-c.done
			return nil, fmt.Errorf("read vmm child report: %w", res.err)
		}
	}
}

func (c *Child) kill() { _ = c.cmd.Process.Kill() }

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed when the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Signal sends sig to the child, unless it has already been reaped.
func (c *Child) Signal(sig os.Signal) error {
	select {
	case <-c.done:
		return os.ErrProcessDone
	default:
	}
	return c.cmd.Process.Signal(sig)
}

// Wait waits for the child to exit and returns its status: nil for exit 0,
// an [*ExitError] otherwise, with a one-line summary of what the child
// printed. Done ctx stops the waiting, not the child.
func (c *Child) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
	}
	if c.waitErr == nil {
		return nil
	}
	return c.exitError()
}

func (c *Child) exitError() error {
	e := &ExitError{Code: -1, Summary: Summarize(c.stderr.String()), Log: c.logPath, err: c.waitErr}
	if ps := c.cmd.ProcessState; ps != nil {
		e.Code = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal()
		}
	}
	return e
}

// ExitError is a VMM child that ended with a non-zero status or a signal.
type ExitError struct {
	// Code is the exit code, -1 if a signal ended it.
	Code int
	// Signal is the signal that ended it, or 0.
	Signal syscall.Signal
	// Summary is one line saying why, drawn from its stderr (e.g. "libkrun
	// could not open KVM"), or "".
	Summary string
	// Log is the file holding its whole stderr, if [WithChildLog] was given.
	Log string
	err error
}

// Error returns "vmm child exited with status N: summary (log: path)".
func (e *ExitError) Error() string {
	s := "vmm child exited with status " + strconv.Itoa(e.Code)
	if e.Signal != 0 {
		s = "vmm child was killed by " + unix.SignalName(e.Signal)
	}
	if e.Summary != "" {
		s += ": " + e.Summary
	}
	if e.Log != "" {
		s += " (log: " + e.Log + ")"
	}
	return s
}

// Unwrap returns the *exec.ExitError.
func (e *ExitError) Unwrap() error { return e.err }

// Summarize turns what a failed VMM process printed on stderr into one line:
// a Rust panic's message (libkrun aborts with one where it cannot go on, e.g.
// without KVM), not the Go runtime's dump that follows an abort, nor a
// backtrace. It returns "" for empty input.
func Summarize(stderr string) string {
	lines := strings.Split(strings.ReplaceAll(stderr, "\r", ""), "\n")
	clip := func(s string) string {
		s = strings.TrimSpace(s)
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	}
	for i, l := range lines {
		_, after, ok := strings.Cut(l, "panicked at ")
		if !ok {
			continue
		}
		// Rust >= 1.73: "thread 'x' panicked at file:line:col:" then the
		// message; older: "panicked at 'message', file:line:col".
		msg := ""
		if strings.HasPrefix(after, "'") {
			msg, _, _ = strings.Cut(after[1:], "', ")
		} else if i+1 < len(lines) {
			msg = lines[i+1]
		}
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "kvm") {
			return "libkrun could not open KVM: " + clip(msg)
		}
		return "libkrun aborted: " + clip(msg)
	}
	goDump := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "SIGABRT: abort") || strings.HasPrefix(l, "SIGSEGV: ") ||
			strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "panic: ") {
			goDump = i
			break
		}
	}
	end := len(lines)
	if goDump >= 0 {
		end = goDump
	}
	for i := end - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "note: run with `RUST_BACKTRACE") {
			continue
		}
		if strings.Contains(strings.ToLower(l), "/dev/kvm") {
			return "libkrun could not open KVM: " + clip(l)
		}
		return clip(l)
	}
	if goDump >= 0 {
		return "the VMM process crashed (" + clip(strings.TrimSuffix(lines[goDump], ":")) + ")"
	}
	return ""
}

// ExitCode returns the child's exit code once it has exited, or -1 while it
// runs or if a signal killed it.
func (c *Child) ExitCode() int {
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Stop sends SIGTERM, waits up to the stop timeout (or until ctx is done), then
// sends SIGKILL, and returns once the child is reaped. It returns the child's
// exit error as [Child.Wait] does.
func (c *Child) Stop(ctx context.Context) error {
	if err := c.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop vmm child: %w", err)
	}
	t := time.NewTimer(c.stopTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.kill()
		<-c.done
	case <-ctx.Done():
		c.kill()
		<-c.done
	}
	return c.Wait(context.Background())
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
