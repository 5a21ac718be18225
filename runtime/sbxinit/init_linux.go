package sbxinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Exit codes of the init itself, as Docker uses them.
const (
	// ExitSetup: the init could not set the sandbox up (mounts, network, user, config).
	ExitSetup = 125
	// ExitNotExecutable: the payload exists but cannot be executed.
	ExitNotExecutable = 126
	// ExitNotFound: the payload's program is not there.
	ExitNotFound = 127
)

// forwarded are the signals the init passes on to the payload.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGWINCH, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPWR, unix.SIGALRM}

// reportTimeout bounds how long an exiting init waits to deliver the payload's exit to
// control clients that wait for it.
const reportTimeout = 2 * time.Second

// Main is the init program (cmd/sbx-init): it reads ConfigPath, sets the sandbox up, runs
// the payload and exits with its status (exit code, or 128+signal).
func Main() {
	os.Exit(Run(ConfigPath, os.Stderr))
}

// Run is Main with the config file and the stream for its own messages given; it returns the
// exit code. Messages start with "sbx-init: " and say which step failed.
func Run(configPath string, console io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(console, "sbx-init: %v\n", err)
		return code
	}
	cfg, err := ReadConfig(configPath)
	if err != nil {
		return fail(ExitSetup, err)
	}
	rep := newReporter(cfg.ReportFD)
	fail = func(code int, err error) int {
		fmt.Fprintf(console, "sbx-init: %v\n", err)
		rep.send(Event{Event: "error", Error: err.Error(), Errno: errnoOf(err), Code: code})
		return code
	}
	in := &initProc{cfg: cfg, procs: newProcTable(), console: console, ctlDir: -1}
	in.status.State = StateStarting
	// Signals are caught before anything starts, so none is lost and every child is reaped.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)
	if os.Getpid() != 1 {
		// libkrun's own init may have forked us, or a test runs us: orphans still come here.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	// Modes are exact while setting up; processes get the usual umask.
	unix.Umask(0)
	err = in.setup()
	unix.Umask(0o022)
	if err != nil {
		in.setFailed(err)
		return fail(ExitSetup, err)
	}
	p, err := in.startPayload()
	lateFailure := false
	if err == nil && in.srv == nil {
		// The control socket listens once the payload runs: nothing waits for it. Should it
		// fail, the payload is killed and the init exits as a failed setup.
		var lerr error
		if in.srv, lerr = listen(in); lerr != nil {
			fail(ExitSetup, lerr)
			in.setFailed(lerr)
			lateFailure = true
			_ = p.signal(unix.SIGKILL)
		}
	}
	if err != nil {
		in.setFailed(err)
		code := ExitSetup
		var se *startError
		if errors.As(err, &se) {
			code = se.code
		}
		fail(code, err)
		in.srv.finish(reportTimeout)
		return code
	}
	if !lateFailure {
		rep.send(Event{Event: "started", Pid: p.pid})
	}
	for {
		select {
		case ws := <-p.done:
			if lateFailure {
				return ExitSetup
			}
			st := exitStatusOf(ws)
			in.setExited(st)
			rep.send(Event{Event: "exit", Status: &st})
			in.srv.finish(reportTimeout)
			return st.Code
		case s := <-sigs:
			if s == unix.SIGCHLD {
				in.procs.reap()
				continue
			}
			_ = p.signal(s.(syscall.Signal))
		}
	}
}

// initProc is the running init.
type initProc struct {
	cfg     Config
	ctlDir  int // O_PATH descriptor of the unix socket's directory, -1 when none
	procs   *procTable
	console io.Writer
	srv     *server

	mu      sync.Mutex
	status  Status
	payload *child
	creds   Credentials
	env     []string
	changed chan struct{} // closed and replaced on every status change
}

func (in *initProc) getStatus() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.status
}

// waitExit returns a channel closed when the payload has exited or failed.
func (in *initProc) setStatus(f func(*Status)) {
	in.mu.Lock()
	f(&in.status)
	if in.changed != nil {
		close(in.changed)
	}
	in.changed = make(chan struct{})
	in.mu.Unlock()
}

// statusChanged returns the current status and a channel closed at its next change.
func (in *initProc) statusChanged() (Status, <-chan struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.changed == nil {
		in.changed = make(chan struct{})
	}
	return in.status, in.changed
}

func (in *initProc) setFailed(err error) {
	in.setStatus(func(s *Status) { s.State, s.Error = StateFailed, err.Error() })
}

func (in *initProc) setExited(st ExitStatus) {
	in.setStatus(func(s *Status) { s.State, s.Exit = StateExited, &st })
}

// setup performs everything before the payload starts.
func (in *initProc) setup() error {
	cfg := &in.cfg
	for _, m := range cfg.Mounts {
		if err := doMount(m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
		}
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set host name %q: %w", cfg.Hostname, err)
		}
	}
	if err := configureNetwork(cfg.Network); err != nil {
		return err
	}
	if err := writeEtc(cfg); err != nil {
		return err
	}
	for _, r := range cfg.Rlimits {
		lim := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		// syscall.Setrlimit, not unix's: for NOFILE it tells the Go runtime that children
		// inherit this limit rather than the one the runtime started with.
		if err := syscall.Setrlimit(r.Resource, &lim); err != nil {
			return fmt.Errorf("rlimit %s (%d) %d:%d: %w", r.Name, r.Resource, r.Soft, r.Hard, err)
		}
	}
	creds, err := resolveUserFiles("/", cfg.Process.User)
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	in.creds = creds
	in.env = withDefault(withDefault(cfg.Process.Env, "PATH", defaultPath), "HOME", creds.Home)
	if err := in.procs.confine(cfg.Security); err != nil {
		return fmt.Errorf("security: %w", err)
	}
	if err := in.prepareControl(); err != nil {
		return err
	}
	if cfg.HideDir {
		if err := unix.Mount("sbx", Dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0555"); err != nil {
			return fmt.Errorf("hide %s: %w", Dir, err)
		}
	}
	return nil
}

// prepareControl keeps a descriptor of the unix socket's directory, so the socket can be
// made after /.sbx is hidden and the payload started (through /proc/self/fd). Without
// /proc the socket is made at once.
func (in *initProc) prepareControl() error {
	p := in.cfg.Control.UnixPath
	if p == "" {
		return nil
	}
	if err := os.MkdirAll(path.Dir(p), 0o700); err != nil {
		return fmt.Errorf("control socket %s: %w", p, err)
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		srv, err := listen(in)
		in.srv = srv
		return err
	}
	fd, err := unix.Open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", p, err)
	}
	in.ctlDir = fd
	return nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// startPayload starts the configured process as the user.
func (in *initProc) startPayload() (*child, error) {
	p := in.cfg.Process
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return nil, fmt.Errorf("working directory %s: %w", cwd, err)
	}
	c, err := in.procs.start(spawnSpec{
		argv:  p.Argv,
		env:   in.env,
		cwd:   cwd,
		creds: in.creds.IDs,
		files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	in.payload = c
	in.mu.Unlock()
	in.setStatus(func(s *Status) { s.State, s.Pid, s.StartedAt = StateRunning, c.pid, time.Now() })
	return c, nil
}

// withDefault adds key=value to env unless key is set.
func withDefault(env []string, key, value string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return env
		}
	}
	return append(env[:len(env):len(env)], key+"="+value)
}

func getenv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// mergeEnv is base with over's keys replacing base's.
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	keys := map[string]bool{}
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		keys[k] = true
	}
	for _, e := range base {
		k, _, _ := strings.Cut(e, "=")
		if !keys[k] {
			out = append(out, e)
		}
	}
	return append(out, over...)
}

// startError is a failure to start a process, with the exit code it stands for.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// lookPath finds name in the sandbox the way execvp does, with the process's own PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	pathList := getenv(env, "PATH")
	if pathList == "" {
		pathList = defaultPath
	}
	var firstErr error
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		var se *startError
		if firstErr == nil && errors.As(err, &se) && se.code == ExitNotExecutable {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &startError{ExitNotFound, fmt.Errorf("exec %s: not found in PATH %s", name, pathList)}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return &startError{ExitNotFound, fmt.Errorf("exec %s: %w", p, errors.Unwrap(err))}
	case fi.IsDir():
		return &startError{ExitNotExecutable, fmt.Errorf("exec %s: is a directory", p)}
	case fi.Mode()&0o111 == 0:
		return &startError{ExitNotExecutable, fmt.Errorf("exec %s: permission denied (not executable)", p)}
	}
	return nil
}

// reporter writes Events on Config.ReportFD, when there is one.
type reporter struct{ fd int }

func newReporter(fd int) reporter {
	if fd <= 0 {
		return reporter{fd: -1}
	}
	// Nothing the init starts may hold the supervisor's pipe.
	syscall.CloseOnExec(fd)
	return reporter{fd: fd}
}

// send writes one event; a supervisor that stopped listening is not the init's failure.
func (r reporter) send(ev Event) {
	if r.fd < 0 {
		return
	}
	// By hand: encoding/json would build its encoders for Event on the start-up path.
	b := append(ev.appendJSON(make([]byte, 0, 128)), '\n')
	for len(b) > 0 {
		n, err := unix.Write(r.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		b = b[n:]
	}
}

// errnoOf is the system call error in err's chain, or 0.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// appendJSON appends ev as JSON, as encoding/json would write it.
func (ev Event) appendJSON(b []byte) []byte {
	b = append(b, `{"event":`...)
	b = appendJSONString(b, ev.Event)
	if ev.Pid != 0 {
		b = strconv.AppendInt(append(b, `,"pid":`...), int64(ev.Pid), 10)
	}
	if ev.Error != "" {
		b = appendJSONString(append(b, `,"error":`...), ev.Error)
	}
	if ev.Errno != 0 {
		b = strconv.AppendUint(append(b, `,"errno":`...), uint64(ev.Errno), 10)
	}
	if ev.Code != 0 {
		b = strconv.AppendInt(append(b, `,"code":`...), int64(ev.Code), 10)
	}
	if ev.Status != nil {
		b = strconv.AppendInt(append(b, `,"status":{"code":`...), int64(ev.Status.Code), 10)
		if ev.Status.Signal != 0 {
			b = strconv.AppendInt(append(b, `,"signal":`...), int64(ev.Status.Signal), 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == '<' || r == '>' || r == '&':
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}
