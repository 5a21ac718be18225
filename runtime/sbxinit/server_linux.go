package sbxinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// server is the init's control socket.
type server struct {
	in        *initProc
	listeners []net.Listener
	mu        sync.Mutex
	finishing bool
	wg        sync.WaitGroup // waits in progress, to deliver the exit before the init exits
}

// listen opens the configured control endpoints and serves them. An endpoint that cannot
// listen is only an error when no other one does (a guest file system that cannot hold a
// socket while the vsock port listens); it is then said on the console.
func listen(in *initProc) (*server, error) {
	s := &server{in: in}
	c := in.cfg.Control
	var errs []error
	if c.VsockPort != 0 {
		l, err := listenVsock(c.VsockPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("control socket: vsock port %d: %w", c.VsockPort, err))
		} else {
			s.listeners = append(s.listeners, l)
		}
	}
	if c.UnixPath != "" {
		l, err := listenUnix(c.UnixPath, in.ctlDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("control socket %s: %w", c.UnixPath, err))
		} else {
			s.listeners = append(s.listeners, l)
		}
	}
	if len(s.listeners) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintf(in.console, "sbx-init: %v (the other control endpoint listens)\n", err)
	}
	for _, l := range s.listeners {
		go s.serve(l)
	}
	return s, nil
}

// listenUnix listens on p, or on its name in the directory dirFD when that is not -1.
func listenUnix(p string, dirFD int) (net.Listener, error) {
	if dirFD >= 0 {
		p = fmt.Sprintf("/proc/self/fd/%d/%s", dirFD, path.Base(p))
	}
	_ = os.Remove(p)
	l, err := net.Listen("unix", p)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(p, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// serve accepts connections from outside the sandbox only.
func (s *server) serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !fromOutside(conn) {
			conn.Close()
			continue
		}
		go s.handle(conn)
	}
}

// fromOutside says whether a connection comes from the supervisor rather than from a
// process in the sandbox (which must never get root through the init): a unix peer outside
// the sandbox's PID namespace has pid 0 here; a vsock peer must be the host (CID 2).
func fromOutside(conn net.Conn) bool {
	switch c := conn.(type) {
	case *net.UnixConn:
		raw, err := c.SyscallConn()
		if err != nil {
			return false
		}
		var cred *unix.Ucred
		var cerr error
		if err := raw.Control(func(fd uintptr) {
			cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		}); err != nil || cerr != nil {
			return false
		}
		return cred.Pid == 0 || os.Getpid() != 1
	case *vsockConn:
		return c.peerCID == unix.VMADDR_CID_HOST
	}
	return false
}

// handle serves one connection's requests, one after the other.
func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	defer func() {
		// The init is PID 1: a bug in serving one client must not end the sandbox.
		if r := recover(); r != nil {
			fmt.Fprintf(s.in.console, "sbx-init: control connection: internal error: %v\n", r)
		}
	}()
	w := newWire(conn)
	for {
		typ, p, err := w.read()
		if err != nil {
			return
		}
		if typ != frameRequest {
			_ = w.writeJSON(frameReply, reply{Error: fmt.Sprintf("expected a request, got frame %q", typ)})
			return
		}
		var req request
		if err := json.Unmarshal(p, &req); err != nil {
			_ = w.writeJSON(frameReply, reply{Error: "bad request: " + err.Error()})
			return
		}
		if err := s.do(w, req); err != nil {
			return
		}
	}
}

// do serves one request; an error ends the connection.
func (s *server) do(w *wire, req request) error {
	in := s.in
	switch req.Op {
	case "hello":
		if req.Version != ProtocolVersion {
			return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("control protocol version %d, this init speaks %d", req.Version, ProtocolVersion), Version: ProtocolVersion})
		}
		return w.writeJSON(frameReply, reply{Version: ProtocolVersion})
	case "status":
		st := in.getStatus()
		return w.writeJSON(frameReply, reply{Status: &st})
	case "wait":
		s.mu.Lock()
		if !s.finishing {
			s.wg.Add(1)
			defer s.wg.Done()
		}
		s.mu.Unlock()
		for {
			st, changed := in.statusChanged()
			if st.State == StateExited || st.State == StateFailed {
				return w.writeJSON(frameReply, reply{Status: &st})
			}
			<-changed
		}
	case "signal":
		in.mu.Lock()
		p := in.payload
		in.mu.Unlock()
		if p == nil {
			return w.writeJSON(frameReply, reply{Error: "the payload is not running"})
		}
		if err := p.signal(syscall.Signal(req.Signal)); err != nil {
			return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("signal %d: %v", req.Signal, err)})
		}
		return w.writeJSON(frameReply, reply{})
	case "exec":
		if req.Exec == nil || len(req.Exec.Argv) == 0 {
			return w.writeJSON(frameReply, reply{Error: "exec: a command is required"})
		}
		return s.exec(w, *req.Exec)
	case "copy-from":
		return s.copyFrom(w, req.Path)
	case "copy-to":
		return s.copyTo(w, req.Path)
	}
	return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
}

// finish stops accepting connections and waits, at most d, for waiting clients to have the
// exit status.
func (s *server) finish(d time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.finishing = true
	s.mu.Unlock()
	for _, l := range s.listeners {
		l.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// exec runs a process for a client, streaming its input and output.
func (s *server) exec(w *wire, req ExecRequest) error {
	in := s.in
	creds := in.creds
	if req.User != nil {
		c, err := resolveUserFiles("/", *req.User)
		if err != nil {
			return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: ExitSetup})
		}
		creds = c
	}
	env := in.env
	if req.User != nil {
		env = mergeEnv(env, []string{"HOME=" + creds.Home})
	}
	env = mergeEnv(env, req.Env)
	cwd := req.Cwd
	if cwd == "" {
		cwd = in.cfg.Process.Cwd
	}
	if cwd == "" {
		cwd = "/"
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		msg := "not a directory"
		if err != nil {
			msg = errors.Unwrap(err).Error()
		}
		return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("exec: working directory %s: %s", cwd, msg), Code: ExitSetup})
	}

	var (
		files   []*os.File
		closeMe []*os.File // the child's ends, closed once it started
		stdinW  *os.File
		outputs []struct {
			r   *os.File
			typ byte
		}
		master *os.File
	)
	cleanup := func() {
		for _, f := range closeMe {
			f.Close()
		}
	}
	if req.TTY {
		m, slave, err := openPTY(req.Size)
		if err != nil {
			return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: ExitSetup})
		}
		master = m
		files = []*os.File{slave, slave, slave}
		closeMe = append(closeMe, slave)
		stdinW = m
		outputs = append(outputs, struct {
			r   *os.File
			typ byte
		}{m, frameStdout})
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: ExitSetup})
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: ExitSetup})
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: ExitSetup})
		}
		files = []*os.File{inR, outW, errW}
		closeMe = append(closeMe, inR, outW, errW)
		stdinW = inW
		outputs = append(outputs, struct {
			r   *os.File
			typ byte
		}{outR, frameStdout}, struct {
			r   *os.File
			typ byte
		}{errR, frameStderr})
	}
	c, err := in.procs.start(spawnSpec{argv: req.Argv, env: env, cwd: cwd, creds: creds.IDs, files: files, tty: req.TTY})
	cleanup()
	if err != nil {
		stdinW.Close()
		for _, o := range outputs {
			o.r.Close()
		}
		code := ExitSetup
		var se *startError
		if errors.As(err, &se) {
			code = se.code
		}
		return w.writeJSON(frameReply, reply{Error: "exec: " + err.Error(), Code: code})
	}
	defer c.proc.Release()
	if master != nil {
		defer master.Close()
	}
	if err := w.writeJSON(frameReply, reply{Pid: c.pid}); err != nil {
		_ = c.signal(syscall.SIGKILL)
	}

	// Output: copied until EOF, or shortly after the process exited when a background
	// process keeps the stream open.
	var outWG sync.WaitGroup
	for _, o := range outputs {
		outWG.Add(1)
		go func() {
			defer outWG.Done()
			buf := make([]byte, chunkSize)
			for {
				n, err := o.r.Read(buf)
				if n > 0 {
					if w.write(o.typ, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}

	// Input: frames from the client until it ends the exec.
	inputDone := make(chan error, 1)
	go func() {
		stdinOpen := true
		defer func() {
			if stdinOpen && !req.TTY {
				stdinW.Close()
			}
		}()
		for {
			typ, p, err := w.read()
			if err != nil {
				_ = c.signal(syscall.SIGKILL)
				inputDone <- err
				return
			}
			switch typ {
			case frameStdin:
				if stdinOpen {
					_, _ = stdinW.Write(p)
				}
			case frameStdinEOF:
				if stdinOpen && !req.TTY {
					stdinW.Close()
					stdinOpen = false
				}
			case frameResize:
				var ws WindowSize
				if master != nil && json.Unmarshal(p, &ws) == nil {
					_ = setWinsize(master, ws)
				}
			case frameSignal:
				var sig struct{ Signal int }
				if json.Unmarshal(p, &sig) == nil && sig.Signal > 0 {
					_ = c.signal(syscall.Signal(sig.Signal))
				}
			case frameEnd:
				inputDone <- nil
				return
			default:
				_ = c.signal(syscall.SIGKILL)
				inputDone <- fmt.Errorf("%w: frame %q during exec", ErrProtocol, typ)
				return
			}
		}
	}()

	var ws syscall.WaitStatus
	select {
	case ws = <-c.done:
	case err := <-inputDone:
		// The client went away or misbehaved: the process was killed; reap it, end.
		<-c.done
		closeAll(outputs, master)
		outWG.Wait()
		if err == nil {
			err = fmt.Errorf("%w: exec ended by the client before the process exited", ErrProtocol)
		}
		return err
	}
	outputsDone := make(chan struct{})
	go func() { outWG.Wait(); close(outputsDone) }()
	select {
	case <-outputsDone:
	case <-time.After(250 * time.Millisecond):
	}
	closeAll(outputs, master)
	outWG.Wait()
	st := exitStatusOf(ws)
	if err := w.writeJSON(frameExit, st); err != nil {
		return err
	}
	return <-inputDone
}

func closeAll(outputs []struct {
	r   *os.File
	typ byte
}, master *os.File) {
	for _, o := range outputs {
		if o.r != master {
			o.r.Close()
		}
	}
	if master != nil {
		// Unblock a pending read without closing the descriptor the input goroutine writes.
		_ = master.SetReadDeadline(time.Now())
	}
}

// openPTY opens a new pseudo-terminal pair without needing /dev/pts's path: TIOCGPTPEER.
func openPTY(size WindowSize) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	sfd := int(r)
	if errno != 0 {
		err = errno
		// Kernels before 4.13: open the slave by its name.
		n, nerr := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
		if nerr != nil {
			unix.Close(mfd)
			return nil, nil, fmt.Errorf("pty peer: %w", err)
		}
		sfd, err = unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(mfd)
			return nil, nil, fmt.Errorf("open pty: %w", err)
		}
	}
	master = os.NewFile(uintptr(mfd), "ptmx")
	slave = os.NewFile(uintptr(sfd), "pts")
	if size.Rows != 0 || size.Cols != 0 {
		_ = setWinsize(master, size)
	}
	return master, slave, nil
}

func setWinsize(f *os.File, ws WindowSize) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = raw.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
	})
	if err != nil {
		return err
	}
	return ierr
}

// copyFrom streams a tar of p to the client.
func (s *server) copyFrom(w *wire, p string) error {
	if _, err := os.Lstat(p); err != nil {
		return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("copy from %s: %v", p, errors.Unwrap(err))})
	}
	if err := w.writeJSON(frameReply, reply{}); err != nil {
		return err
	}
	if err := WriteTar(frameWriter{w, frameData}, p, tarTop(p), nil); err != nil {
		return w.writeJSON(frameError, reply{Error: fmt.Sprintf("copy from %s: %v", p, err)})
	}
	return w.write(frameDataEnd, nil)
}

// copyTo extracts the client's tar stream into the directory dir.
func (s *server) copyTo(w *wire, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("copy to %s: %v", dir, errors.Unwrap(err))})
	}
	if !fi.IsDir() {
		return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("copy to %s: not a directory", dir)})
	}
	if err := w.writeJSON(frameReply, reply{}); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		err := extractTar(pr, dir)
		_, _ = io.Copy(io.Discard, pr) // drain to the end on failure
		result <- err
	}()
	for {
		typ, p, err := w.read()
		if err != nil {
			pw.CloseWithError(err)
			<-result
			return err
		}
		if typ == frameDataEnd {
			pw.Close()
			break
		}
		if typ != frameData {
			pw.CloseWithError(ErrProtocol)
			<-result
			return fmt.Errorf("%w: frame %q during copy", ErrProtocol, typ)
		}
		if _, err := pw.Write(p); err != nil {
			return err
		}
	}
	if err := <-result; err != nil {
		return w.writeJSON(frameReply, reply{Error: fmt.Sprintf("copy to %s: %v", dir, err)})
	}
	return w.writeJSON(frameReply, reply{})
}

// tarTop names the top entry of a copy of p: its base name, or "." for the root.
func tarTop(p string) string {
	top, err := filepath.Rel(filepath.Dir(filepath.Clean(p)), filepath.Clean(p))
	if err != nil {
		return filepath.Base(p)
	}
	return top
}
