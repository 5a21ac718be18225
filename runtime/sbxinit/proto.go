package sbxinit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ProtocolVersion is the control protocol's version, exchanged by Dial.
const ProtocolVersion = 1

// The control protocol: a connection carries requests one after the other. Each message is a
// frame: one type byte, a big-endian uint32 length, then that many bytes. A request is a
// frameRequest with a JSON request; the server answers with a frameReply (JSON reply) and,
// for exec and copies, streams frames until the operation's end.
//
//	exec:      → request  ← reply(pid)  ⇄ stdin/stdin-eof/resize/signal → , ← stdout/stderr
//	           ← exit  → end
//	copy-from: → request  ← reply  ← data… ← data-end (or error)
//	copy-to:   → request  ← reply  → data… → data-end  ← reply
//	status, wait, signal: → request ← reply
const (
	frameRequest  byte = 'Q'
	frameReply    byte = 'R'
	frameStdin    byte = '0'
	frameStdout   byte = '1'
	frameStderr   byte = '2'
	frameStdinEOF byte = 'e'
	frameResize   byte = 'z'
	frameSignal   byte = 's'
	frameExit     byte = 'x'
	frameEnd      byte = 'E'
	frameData     byte = 'd'
	frameDataEnd  byte = 'D'
	frameError    byte = '!'
)

// maxFrame bounds a frame's payload; data is sent in chunks of at most chunkSize.
const (
	maxFrame  = 1 << 20
	chunkSize = 32 << 10
)

// request is a control request.
type request struct {
	Op      string       `json:"op"` // hello, status, wait, signal, exec, copy-from, copy-to
	Version int          `json:"version,omitempty"`
	Signal  int          `json:"signal,omitempty"`
	Path    string       `json:"path,omitempty"`
	Exec    *ExecRequest `json:"exec,omitempty"`
}

// reply answers a request.
type reply struct {
	Error   string  `json:"error,omitempty"`
	Code    int     `json:"code,omitempty"` // exec: the exit code a failed start stands for (126, 127)
	Version int     `json:"version,omitempty"`
	Pid     int     `json:"pid,omitempty"`
	Status  *Status `json:"status,omitempty"`
}

// State is the payload's state.
type State string

// The payload's states.
const (
	StateStarting State = "starting" // the init is setting up
	StateRunning  State = "running"
	StateExited   State = "exited"
	StateFailed   State = "failed" // the init's setup or the payload's start failed
)

// Status is the payload's state as the init reports it.
type Status struct {
	State State `json:"state"`
	// Pid is the payload's pid in the sandbox.
	Pid       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Exit is how the payload ended, once it has.
	Exit *ExitStatus `json:"exit,omitempty"`
	// Error says why the init or the payload's start failed (StateFailed).
	Error string `json:"error,omitempty"`
}

// ExitStatus is how a process ended: its exit code, or the signal that killed it (Code is
// then 128+signal, as a shell reports it and as the init exits).
type ExitStatus struct {
	Code   int            `json:"code"`
	Signal syscall.Signal `json:"signal,omitempty"`
}

// String says "exit code 3" or "killed by signal terminated".
func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return "killed by signal " + s.Signal.String()
	}
	return "exit code " + strconv.Itoa(s.Code)
}

// ExecRequest is a process to run in a running sandbox.
type ExecRequest struct {
	Argv []string `json:"argv"`
	// Env is added to (and overrides) the payload's environment.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory; the payload's when empty.
	Cwd string `json:"cwd,omitempty"`
	// User is who runs it; the payload's user when nil.
	User *User `json:"user,omitempty"`
	// TTY gives the process a pseudo-terminal (stdout carries both output streams) of
	// Size.
	TTY  bool       `json:"tty,omitempty"`
	Size WindowSize `json:"size,omitzero"`

	// Resize, when not nil, delivers new window sizes while the process runs (TTY).
	Resize <-chan WindowSize `json:"-"`
	// Signals, when not nil, delivers signals to send to the process.
	Signals <-chan syscall.Signal `json:"-"`
}

// WindowSize is a terminal's size in characters.
type WindowSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ErrProtocol is returned for a malformed or unexpected frame.
var ErrProtocol = errors.New("sbx-init control protocol error")

// wire reads and writes frames; writes are serialized.
type wire struct {
	r   io.Reader
	wmu sync.Mutex
	w   io.Writer
	hdr [5]byte
}

func newWire(rw io.ReadWriter) *wire { return &wire{r: rw, w: rw} }

func (c *wire) write(typ byte, p []byte) error {
	if len(p) > maxFrame {
		return fmt.Errorf("%w: frame of %d bytes", ErrProtocol, len(p))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	buf := make([]byte, 5+len(p))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(p)))
	copy(buf[5:], p)
	_, err := c.w.Write(buf)
	return err
}

func (c *wire) writeJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(typ, b)
}

// read returns the next frame; the payload is freshly allocated.
func (c *wire) read() (byte, []byte, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(c.hdr[1:5])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return c.hdr[0], p, nil
}

// frameWriter writes data frames of one type, in chunks.
type frameWriter struct {
	w   *wire
	typ byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), chunkSize)
		if err := f.w.write(f.typ, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// exitCode is the code for a wait status: the exit code, or 128+signal.
func exitStatusOf(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}
