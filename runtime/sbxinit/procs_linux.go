package sbxinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procTable starts processes and reaps every child of the init, the payload's orphans
// included. One lock covers starting a process and registering it, and reaping, so a child
// that exits at once is never reaped before its waiter is registered.
type procTable struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	spawn   chan func() // run on the spawner thread, when confined
}

func newProcTable() *procTable {
	return &procTable{waiters: map[int]chan syscall.WaitStatus{}}
}

// confine starts the thread every process is started from, with sec applied to it: the
// capability bounding set, no_new_privs and a seccomp filter are per-thread and inherited
// by the children cloned from it, while the init's other threads keep what they need.
func (t *procTable) confine(sec *Security) error {
	if sec == nil {
		return nil
	}
	ready := make(chan error)
	t.spawn = make(chan func())
	go func() {
		// Never unlocked: the thread dies with the init, never serving other goroutines.
		runtime.LockOSThread()
		if err := applySecurity(sec); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range t.spawn {
			f()
		}
	}()
	return <-ready
}

func applySecurity(sec *Security) error {
	if sec.Capabilities != nil {
		last := 63
		if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				last = n
			}
		}
		keep := map[int]bool{}
		for _, c := range sec.Capabilities {
			keep[c] = true
		}
		for c := 0; c <= last; c++ {
			if keep[c] {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
	}
	if sec.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if len(sec.Seccomp) > 0 {
		filter := make([]unix.SockFilter, len(sec.Seccomp))
		for i, f := range sec.Seccomp {
			filter[i] = unix.SockFilter{Code: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
		}
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		// No TSYNC: this thread only (and what it starts).
		if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
			return fmt.Errorf("install the seccomp filter: %w", errno)
		}
		runtime.KeepAlive(filter)
	}
	return nil
}

// child is a process the init started.
type child struct {
	pid  int
	proc *os.Process // holds a pidfd: signals never reach a reused pid
	done chan syscall.WaitStatus
}

func (c *child) signal(s syscall.Signal) error {
	err := c.proc.Signal(s)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// spawnSpec is a process to start.
type spawnSpec struct {
	argv  []string
	env   []string
	cwd   string
	creds IDs
	files []*os.File
	tty   bool // files[0] is the terminal: new session, controlling terminal
}

// start starts s and registers it; its status arrives on the child's done channel once
// reaped.
func (t *procTable) start(s spawnSpec) (*child, error) {
	exe, err := lookPath(s.argv[0], s.env)
	if err != nil {
		return nil, err
	}
	attr := &os.ProcAttr{
		Dir:   s.cwd,
		Env:   s.env,
		Files: s.files,
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: s.creds.UID, Gid: s.creds.GID, Groups: s.creds.Groups},
			Setsid:     s.tty,
			Setctty:    s.tty,
			Ctty:       0,
		},
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var p *os.Process
	if t.spawn != nil {
		done := make(chan struct{})
		t.spawn <- func() { p, err = os.StartProcess(exe, s.argv, attr); close(done) }
		<-done
	} else {
		p, err = os.StartProcess(exe, s.argv, attr)
	}
	if err != nil {
		code := ExitSetup
		switch {
		case errors.Is(err, unix.ENOENT):
			code = ExitNotFound
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EPERM):
			code = ExitNotExecutable
		}
		return nil, &startError{code, fmt.Errorf("start %s as %d:%d in %s: %w", exe, s.creds.UID, s.creds.GID, s.cwd, err)}
	}
	c := &child{pid: p.Pid, proc: p, done: make(chan syscall.WaitStatus, 1)}
	t.waiters[c.pid] = c.done
	return c, nil
}

// reap collects every exited child, delivering the statuses of registered ones.
func (t *procTable) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		if ch, ok := t.waiters[pid]; ok {
			delete(t.waiters, pid)
			ch <- ws
		}
	}
}
