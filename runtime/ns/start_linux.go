//go:build linux

package ns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a started sandbox: the init at the top of its PID namespace.
type Process struct {
	// Warnings are problems that did not stop the sandbox, such as having
	// no usable cgroup for its limits.
	Warnings []string

	cmd     *exec.Cmd
	cgroups cgroupSet
	events  <-chan event

	once   sync.Once
	status ExitStatus
	err    error
}

// Start starts a sandbox: it runs argv (a binary whose hidden command calls
// [RunChild], e.g. /proc/self/exe __ns) in new mount, PID, UTS, IPC and,
// unless cfg.NetNS is set, network namespaces, places it in its cgroups and
// returns once the payload runs. The payload's stdout and stderr go to
// stdout and stderr; its stdin is /dev/null.
//
// A setup failure in the child comes back as an error wrapping a
// [*StepError]. Cancelling ctx kills the sandbox, also after Start
// returned; stop it gracefully with [Process.Signal] first. The sandbox is
// killed too when the thread that started it exits (Pdeathsig). Call
// [Cleanup] once it has ended.
func Start(ctx context.Context, argv []string, cfg Config, stdout, stderr io.Writer) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("start sandbox: no child command")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", cfg.Name, err)
	}
	for _, m := range cfg.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return nil, fmt.Errorf("start sandbox %s: mount source: %w (create it or fix the mount)", cfg.Name, err)
		}
	}
	if se := checkRlimits(cfg.Rlimits); se != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", cfg.Name, se)
	}
	if cfg.UpperDir != "" {
		if err := privateDir(path.Dir(path.Clean(cfg.UpperDir))); err != nil {
			return nil, fmt.Errorf("start sandbox %s: writable layer: %w", cfg.Name, err)
		}
	}
	if cfg.ControlDir != "" {
		if err := privateDir(cfg.ControlDir); err != nil {
			return nil, fmt.Errorf("start sandbox %s: control directory: %w", cfg.Name, err)
		}
	}
	if err := writeInitLayer(&cfg); err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", cfg.Name, err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", cfg.Name, err)
	}
	p := &Process{}
	cg, cgErr := cgroupsFor(&cfg)
	if cgErr == nil {
		var warnings []string
		if warnings, cgErr = cg.create(&cfg); cgErr != nil {
			_ = cg.remove()
		}
		p.Warnings = append(p.Warnings, warnings...)
	}
	if cgErr != nil {
		cg = cgroupSet{}
		p.Warnings = append(p.Warnings, fmt.Sprintf("sandbox %s runs without cpu and memory limits: %v", cfg.Name, cgErr))
	}
	for _, c := range cg.missing {
		what := map[string]string{"pids": "a pids limit (a fork bomb is not contained)", "devices": "a device cgroup (only nodev mounts and missing capabilities keep device nodes out of reach)"}[c]
		p.Warnings = append(p.Warnings, fmt.Sprintf("sandbox %s runs without %s: the host has no %s cgroup controller", cfg.Name, what, c))
	}
	p.cgroups = cg
	fail := func(err error) (*Process, error) {
		_ = cg.remove()
		return nil, fmt.Errorf("start sandbox %s: %w", cfg.Name, err)
	}

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer stdinR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		stdinW.Close()
		return fail(err)
	}
	defer repW.Close()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdout, stderr
	cmd.ExtraFiles = []*os.File{repW}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if cfg.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		stdinW.Close()
		repR.Close()
		return fail(err)
	}
	p.cmd = cmd
	stdinR.Close()
	repW.Close()

	// The child reads its config only after it is in its cgroups, so
	// nothing it starts escapes them.
	if err := cg.add(cmd.Process.Pid); err != nil {
		stdinW.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		repR.Close()
		return fail(err)
	}
	go func() {
		_, _ = stdinW.Write(data)
		stdinW.Close()
	}()

	events := make(chan event, 4)
	go func() {
		defer close(events)
		defer repR.Close()
		dec := json.NewDecoder(repR)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				return
			}
			events <- ev
		}
	}()
	p.events = events

	select {
	case ev, ok := <-events:
		switch {
		case ok && ev.Event.Event == "started":
			return p, nil
		case ok && ev.Event.Event == "error":
			_, _ = p.Wait()
			return fail(ev.stepError())
		default:
			st, err := p.Wait()
			if err == nil {
				err = fmt.Errorf("the child (%s) ended with %v before it reported: its stderr says why", strings.Join(argv, " "), st)
			}
			return fail(err)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_, _ = p.Wait()
		return fail(ctx.Err())
	}
}

// privateDir creates dir (0700) or, when it exists, makes it 0700: it holds
// the sandbox's writable layer, whose setuid files and device nodes no other
// host user may reach. It refuses a directory that is not the caller's.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to the user running the sandbox (uid %d): use a directory of your own", dir, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		if err := unix.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Pid is the host pid of the sandbox's init.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Cgroups lists the sandbox's cgroup directories, one per hierarchy; none
// when it runs without cgroups.
func (p *Process) Cgroups() []string { return append([]string(nil), p.cgroups.dirs...) }

// Signal sends sig to the sandbox's init, which forwards SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and the other signals sbxinit lists to
// the payload; SIGKILL ends the whole sandbox at once. After the sandbox ended it returns
// os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the sandbox to end and returns the payload's status; when
// init itself was killed (SIGKILL), that signal. The error is for failures
// to wait, not for a non-zero status. Wait may be called more than once.
func (p *Process) Wait() (ExitStatus, error) {
	p.once.Do(func() {
		err := p.cmd.Wait()
		var reported *ExitStatus
		for ev := range p.events {
			if ev.Event.Event == "exit" && ev.Status != nil {
				reported = &ExitStatus{Code: ev.Status.Code, Signal: ev.Status.Signal}
			}
		}
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			p.err = fmt.Errorf("wait for sandbox: %w", err)
		}
		ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			p.status = ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
		case reported != nil:
			p.status = *reported
		default:
			p.status = ExitStatus{Code: p.cmd.ProcessState.ExitCode()}
		}
	})
	return p.status, p.err
}

// Cleanup removes what a sandbox leaves on the host after it ended: its
// cgroups, killing anything still in them. Mounts need no cleanup: they
// only ever existed in the sandbox's mount namespace. It is idempotent and
// needs only the sandbox's Config, so it also works after a crash; call it
// from a process in the same cgroup as the one that called Start when
// CgroupParent is relative.
func Cleanup(cfg Config) error {
	// An empty name would make the cgroup parent, or the caller's own
	// cgroup, the one to empty and remove.
	if err := validName(cfg.Name); err != nil {
		return fmt.Errorf("clean up sandbox: %w", err)
	}
	cg, err := cgroupsFor(&cfg)
	if err != nil {
		return nil // no usable cgroups: nothing was created
	}
	if err := cg.remove(); err != nil {
		return fmt.Errorf("clean up sandbox %s: %w", cfg.Name, err)
	}
	return nil
}
