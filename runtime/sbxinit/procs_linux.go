package sbxinit

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// procTable starts processes and reaps every child of the init, the payload's orphans
// included. One lock covers starting a process and registering it, and reaping, so a child
// that exits at once is never reaped before its waiter is registered.
type procTable struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
}

func newProcTable() *procTable {
	return &procTable{waiters: map[int]chan syscall.WaitStatus{}}
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
	p, err := os.StartProcess(exe, s.argv, attr)
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
