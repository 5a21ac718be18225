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
	"sync"
	"syscall"
	"time"
)

// SpawnOption configures [Spawn].
type SpawnOption func(*spawnOptions) error

type spawnOptions struct {
	env         []string
	stdout      io.Writer
	stderr      io.Writer
	stopTimeout time.Duration
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
	tail := &tailBuffer{max: 4096}
	if o.stderr != nil {
		cmd.Stderr = io.MultiWriter(o.stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	cmd.ExtraFiles = []*os.File{wr} // fd 3 == ReportFD
	cmd.SysProcAttr = childSysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = o.stopTimeout
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, fmt.Errorf("start vmm child %s: %w", argv[0], err)
	}
	wr.Close()

	c := &Child{cmd: cmd, stopTimeout: o.stopTimeout, done: make(chan struct{}), stderr: tail}
	go func() {
		c.waitErr = cmd.Wait()
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
			}
		case res.err == nil:
			c.kill()
			<-c.done
			return nil, fmt.Errorf("vmm child sent unknown status %q", res.r.Status)
		case errors.Is(res.err, io.EOF):
			<-c.done
			return nil, fmt.Errorf("vmm child exited before configuring the VM (%s): %s",
				cmd.ProcessState, c.stderr.String())
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

// Wait waits for the child to exit and returns its status: nil for exit 0, an
// *exec.ExitError otherwise (exit code or signal), wrapped with the end of its
// stderr. Done ctx stops the waiting, not the child.
func (c *Child) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
	}
	if c.waitErr == nil {
		return nil
	}
	if s := c.stderr.String(); s != "" {
		return fmt.Errorf("vmm child: %w: %s", c.waitErr, s)
	}
	return fmt.Errorf("vmm child: %w", c.waitErr)
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
