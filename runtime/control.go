package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// Every sandbox's init serves a control socket (runtime/sbxinit) whose host end is
// <sandbox dir>/ctl/init.sock on both drivers: the ns driver binds <sandbox dir>/ctl into the
// sandbox, the krun driver has libkrun forward that path to the guest's vsock port. exec,
// shell, cp and run reach a sandbox only through it.

// ControlSocketPath is the host path of the control socket of the sandbox whose directory is
// dir (.sbx/sandboxes/NAME).
func ControlSocketPath(dir string) string {
	return filepath.Join(dir, "ctl", sbxinit.ControlSocket)
}

// ErrNotRunning is wrapped by DialSandbox's error for a sandbox that exists but does not run.
var ErrNotRunning = errors.New("not running")

// ErrNoSandbox is wrapped by DialSandbox's error for a name the project's state lacks.
var ErrNoSandbox = errors.New("no such sandbox")

// DialSandbox connects to the init of the running sandbox name of the project. Its errors
// are one line with what to do: a sandbox that the state does not know, one that does not
// run (stopped, exited, crashed), one without a reachable control socket.
func (p *Project) DialSandbox(ctx context.Context, name string) (*sbxinit.Client, *spec.RunSpec, error) {
	st, err := p.Store.Read()
	if err != nil {
		return nil, nil, err
	}
	rec := st.Record(name)
	if rec == nil {
		names := st.Names()
		hint := "'sbx up' creates the sandboxes of the Sandboxfile"
		if len(names) > 0 {
			hint = "this project has " + strings.Join(names, ", ")
		}
		return nil, nil, fmt.Errorf("%w %q in this project (%s)", ErrNoSandbox, name, hint)
	}
	status := p.Observe(st)[name]
	switch status {
	case planner.StatusRunning, planner.StatusReady, planner.StatusUnready, planner.StatusStarting:
	default:
		return nil, nil, fmt.Errorf("sandbox %s is %w (%s): 'sbx start %s' or 'sbx up' starts it", name, ErrNotRunning, status, name)
	}
	dir := p.SandboxDir(name)
	rs, err := ReadRunSpec(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	patience := 5 * time.Second
	if _, err := os.Stat(ControlSocketPath(dir)); errors.Is(err, os.ErrNotExist) && time.Since(rec.StartedAt) > 10*time.Second {
		patience = 0 // long started, and no socket: there will be none
	}
	c, err := DialControl(ctx, dir, patience)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	return c, rs, nil
}

// DialControl connects to the init's control socket of the sandbox directory dir, retrying
// for up to patience while the socket is not there or does not answer yet: the init starts
// its payload before it listens, and libkrun accepts on the host before the guest listens.
func DialControl(ctx context.Context, dir string, patience time.Duration) (*sbxinit.Client, error) {
	sock := ControlSocketPath(dir)
	start := time.Now()
	for {
		c, err := dialUnixLong(ctx, sock)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Since(start) >= patience {
			if _, serr := os.Stat(sock); errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("no control socket at %s: the sandbox runs without sbx-init's (started by an older sbx, or by a driver that does not run sbx-init); 'sbx restart' with this sbx starts it with one", sock)
			}
			return nil, fmt.Errorf("its init does not answer at %s: %w ('sbx logs' shows what it said)", sock, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// maxSocketPath is the longest path a unix socket address holds.
const maxSocketPath = 107

// dialUnixLong dials a unix socket whose path may be longer than a socket address holds,
// through /proc/self/fd of its directory.
func dialUnixLong(ctx context.Context, sock string) (*sbxinit.Client, error) {
	if len(sock) <= maxSocketPath {
		return sbxinit.DialUnix(ctx, sock)
	}
	fd, err := unix.Open(filepath.Dir(sock), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("connect to sbx-init at %s: %w", sock, err)
	}
	defer unix.Close(fd)
	return sbxinit.DialUnix(ctx, "/proc/self/fd/"+strconv.Itoa(fd)+"/"+filepath.Base(sock))
}

// HasProgram reports whether the root of s (its writable layer, then its image's layers,
// top first) has prog: an absolute path, or a name looked up in the PATH of s's environment.
// Whiteouts are not interpreted, so a program deleted in an upper layer still counts.
func HasProgram(s *spec.RunSpec, prog string) bool {
	var cands []string
	if strings.Contains(prog, "/") {
		if !path.IsAbs(prog) {
			return false
		}
		cands = []string{prog}
	} else {
		dirs := strings.TrimPrefix(defaultPath, "PATH=")
		for _, e := range s.Process.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				dirs = v
			}
		}
		for _, d := range strings.Split(dirs, ":") {
			if path.IsAbs(d) {
				cands = append(cands, path.Join(d, prog))
			}
		}
	}
	// The writable layer's files: the krun driver's upper directory, the ns driver's.
	w := writableDir(s.Dir)
	roots := []string{filepath.Join(w, "root"), filepath.Join(w, "upper")}
	for i := len(s.Image.Layers) - 1; i >= 0; i-- {
		roots = append(roots, s.Image.Layers[i])
	}
	for _, c := range cands {
		for _, r := range roots {
			if fi, err := lstatIn(r, c); err == nil && !fi.IsDir() {
				return true
			}
		}
	}
	return false
}

// lstatIn stats p inside root, following symlinks within root (an image's /bin/sh is often
// a link to busybox), never out of it.
func lstatIn(root, p string) (os.FileInfo, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fi, err := r.Stat(strings.TrimPrefix(p, "/"))
	if err != nil {
		// A symlink to a file of a lower layer: the link itself counts.
		return r.Lstat(strings.TrimPrefix(p, "/"))
	}
	return fi, nil
}
