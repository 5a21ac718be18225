package sbxinit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Client talks to an init's control socket over one connection. Requests on a Client run one
// at a time; open more connections for concurrent execs.
type Client struct {
	conn net.Conn
	w    *wire
	mu   sync.Mutex
}

// Dial greets the init on conn (a unix socket on the ns driver, the host end of the krun
// vsock port) and returns a client for it. The client owns conn: Close closes it.
func Dial(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{conn: conn, w: newWire(conn)}
	var rep reply
	if err := c.roundTrip(ctx, request{Op: "hello", Version: ProtocolVersion}, &rep); err != nil {
		return nil, fmt.Errorf("connect to sbx-init: %w", err)
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("connect to sbx-init: %s: sbx and the sandbox's init differ; restart the sandbox with this sbx", rep.Error)
	}
	return c, nil
}

// DialUnix connects to a unix control socket and greets the init.
func DialUnix(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to sbx-init at %s: %w", path, err)
	}
	c, err := Dial(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RemoteError is an error the init reported.
type RemoteError struct {
	Msg string
	// Code, for a failed exec start, is the exit code it stands for: 127 (not found), 126
	// (not executable) or 125 (anything else).
	Code int
}

func (e *RemoteError) Error() string { return e.Msg }

// watch makes blocking I/O on the connection return when ctx ends; the returned function
// undoes it and says whether ctx ended.
func (c *Client) watch(ctx context.Context) func() error {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !stop() && ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	}
}

func (c *Client) roundTrip(ctx context.Context, req request, rep *reply) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.watch(ctx)
	err := c.w.writeJSON(frameRequest, req)
	if err == nil {
		err = c.readReply(rep)
	}
	if cerr := done(); cerr != nil {
		return cerr
	}
	return err
}

func (c *Client) readReply(rep *reply) error {
	typ, p, err := c.w.read()
	if err != nil {
		return err
	}
	if typ != frameReply {
		return fmt.Errorf("%w: expected a reply, got frame %q", ErrProtocol, typ)
	}
	return json.Unmarshal(p, rep)
}

func remote(rep reply) error {
	if rep.Error == "" {
		return nil
	}
	return &RemoteError{Msg: rep.Error, Code: rep.Code}
}

// Status returns the payload's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var rep reply
	if err := c.roundTrip(ctx, request{Op: "status"}, &rep); err != nil {
		return Status{}, fmt.Errorf("sbx-init status: %w", err)
	}
	if rep.Status == nil {
		return Status{}, fmt.Errorf("sbx-init status: %w: no status", ErrProtocol)
	}
	return *rep.Status, remote(rep)
}

// Wait blocks until the payload has exited (or failed to start) and returns its status.
func (c *Client) Wait(ctx context.Context) (Status, error) {
	var rep reply
	if err := c.roundTrip(ctx, request{Op: "wait"}, &rep); err != nil {
		return Status{}, fmt.Errorf("sbx-init wait: %w", err)
	}
	if rep.Status == nil {
		return Status{}, fmt.Errorf("sbx-init wait: %w: no status", ErrProtocol)
	}
	return *rep.Status, remote(rep)
}

// Signal sends sig to the payload.
func (c *Client) Signal(ctx context.Context, sig syscall.Signal) error {
	var rep reply
	if err := c.roundTrip(ctx, request{Op: "signal", Signal: int(sig)}, &rep); err != nil {
		return fmt.Errorf("sbx-init signal: %w", err)
	}
	return remote(rep)
}

// Exec runs a process in the sandbox: stdin (may be nil) is its input, stdout and stderr
// (may be nil) receive its output (with TTY, everything comes on stdout). It returns the
// process's exit code (128+signal when killed). A process that cannot be started is a
// *RemoteError whose Code is 126 or 127.
func (c *Client) Exec(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.watch(ctx)
	code, err := c.exec(req, stdin, stdout, stderr)
	if cerr := done(); cerr != nil {
		// The connection's state is unknown now: the init kills the process when it closes.
		c.conn.Close()
		return -1, cerr
	}
	return code, err
}

func (c *Client) exec(req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if err := c.w.writeJSON(frameRequest, request{Op: "exec", Exec: &req}); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	var rep reply
	if err := c.readReply(&rep); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	if err := remote(rep); err != nil {
		return -1, err
	}

	// Frames to the init stop once the exec has ended, so a stdin still blocked in Read
	// never writes into the next request.
	var (
		sendMu sync.Mutex
		ended  bool
	)
	send := func(typ byte, p []byte) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		if ended {
			return io.ErrClosedPipe
		}
		return c.w.write(typ, p)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		if stdin != nil {
			buf := make([]byte, chunkSize)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && send(frameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					break
				}
			}
		}
		_ = send(frameStdinEOF, nil)
	}()
	if req.Resize != nil || req.Signals != nil {
		go func() {
			for {
				select {
				case <-stop:
					return
				case ws, ok := <-req.Resize:
					if !ok {
						req.Resize = nil
						continue
					}
					b, _ := json.Marshal(ws)
					_ = send(frameResize, b)
				case sig, ok := <-req.Signals:
					if !ok {
						req.Signals = nil
						continue
					}
					b, _ := json.Marshal(struct{ Signal int }{int(sig)})
					_ = send(frameSignal, b)
				}
			}
		}()
	}
	for {
		typ, p, err := c.w.read()
		if err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		switch typ {
		case frameStdout:
			if _, err := stdout.Write(p); err != nil {
				return -1, fmt.Errorf("exec: write output: %w", err)
			}
		case frameStderr:
			if _, err := stderr.Write(p); err != nil {
				return -1, fmt.Errorf("exec: write output: %w", err)
			}
		case frameExit:
			var st ExitStatus
			if err := json.Unmarshal(p, &st); err != nil {
				return -1, fmt.Errorf("exec: %w: %v", ErrProtocol, err)
			}
			sendMu.Lock()
			ended = true
			err := c.w.write(frameEnd, nil)
			sendMu.Unlock()
			if err != nil {
				return st.Code, fmt.Errorf("exec: %w", err)
			}
			return st.Code, nil
		default:
			return -1, fmt.Errorf("exec: %w: frame %q", ErrProtocol, typ)
		}
	}
}

// CopyFrom writes a tar stream of path in the sandbox (a file or a directory tree, named
// from its base name down, modes, owners and times kept) to w.
func (c *Client) CopyFrom(ctx context.Context, path string, w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.watch(ctx)
	err := c.copyFrom(path, w)
	if cerr := done(); cerr != nil {
		c.conn.Close()
		return cerr
	}
	return err
}

func (c *Client) copyFrom(path string, w io.Writer) error {
	if err := c.w.writeJSON(frameRequest, request{Op: "copy-from", Path: path}); err != nil {
		return fmt.Errorf("copy from %s: %w", path, err)
	}
	var rep reply
	if err := c.readReply(&rep); err != nil {
		return fmt.Errorf("copy from %s: %w", path, err)
	}
	if err := remote(rep); err != nil {
		return err
	}
	var werr error
	for {
		typ, p, err := c.w.read()
		if err != nil {
			return fmt.Errorf("copy from %s: %w", path, err)
		}
		switch typ {
		case frameData:
			if werr == nil {
				_, werr = w.Write(p)
			}
		case frameDataEnd:
			return werr
		case frameError:
			var rep reply
			_ = json.Unmarshal(p, &rep)
			return &RemoteError{Msg: rep.Error}
		default:
			return fmt.Errorf("copy from %s: %w: frame %q", path, ErrProtocol, typ)
		}
	}
}

// CopyTo extracts the tar stream r into the directory dir in the sandbox, keeping the
// entries' modes, owners and times. Entries cannot leave dir.
func (c *Client) CopyTo(ctx context.Context, dir string, r io.Reader) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.watch(ctx)
	err := c.copyTo(dir, r)
	if cerr := done(); cerr != nil {
		c.conn.Close()
		return cerr
	}
	return err
}

func (c *Client) copyTo(dir string, r io.Reader) error {
	if err := c.w.writeJSON(frameRequest, request{Op: "copy-to", Path: dir}); err != nil {
		return fmt.Errorf("copy to %s: %w", dir, err)
	}
	var rep reply
	if err := c.readReply(&rep); err != nil {
		return fmt.Errorf("copy to %s: %w", dir, err)
	}
	if err := remote(rep); err != nil {
		return err
	}
	_, rerr := io.Copy(frameWriter{c.w, frameData}, r)
	if rerr != nil && errors.Is(rerr, net.ErrClosed) {
		return fmt.Errorf("copy to %s: %w", dir, rerr)
	}
	if err := c.w.write(frameDataEnd, nil); err != nil {
		return fmt.Errorf("copy to %s: %w", dir, err)
	}
	rep = reply{}
	if err := c.readReply(&rep); err != nil {
		return fmt.Errorf("copy to %s: %w", dir, err)
	}
	if rerr != nil {
		return fmt.Errorf("copy to %s: read the archive: %w", dir, rerr)
	}
	return remote(rep)
}
