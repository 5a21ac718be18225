package nsnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// DialFunc opens a connection to the sandbox's side of a published port.
type DialFunc func(ctx context.Context) (net.Conn, error)

// Dialer returns the DialFunc for a guest port of the sandbox, for network
// "tcp" or "udp". It dials the sandbox's address; a TCP connection that is
// refused there is retried at 127.0.0.1 inside the sandbox's namespace, so a
// server bound to loopback only is reachable too. For scope none it always
// dials inside the namespace. For a sandbox with a tap ([SetupTap]) it only
// dials the guest's address: the guest's loopback is out of the host's reach.
func (h *Handle) Dialer(network string, port int) DialFunc {
	local := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	inside := func(ctx context.Context) (net.Conn, error) {
		return DialNetNS(ctx, h.nsPath, network, local)
	}
	if !h.net.IP.IsValid() {
		return inside
	}
	remote := net.JoinHostPort(h.net.IP.String(), fmt.Sprint(port))
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, remote)
		if err != nil && network == "tcp" && errors.Is(err, syscall.ECONNREFUSED) && h.nsPath != "" {
			if c, err2 := inside(ctx); err2 == nil {
				return c, nil
			}
		}
		return c, err
	}
}

// Proxy forwards a published port from an address of the host to a sandbox.
type Proxy struct {
	network string
	ln      net.Listener   // tcp
	pc      net.PacketConn // udp
	dial    DialFunc
	opts    proxyOptions

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
}

type proxyOptions struct {
	idle        time.Duration
	dialTimeout time.Duration
	log         *slog.Logger
}

// ProxyOption configures a [Proxy].
type ProxyOption func(*proxyOptions) error

// WithIdleTimeout sets after how long without a datagram a UDP client's
// session ends (default 60s).
func WithIdleTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d <= 0 {
			return fmt.Errorf("idle timeout %s: must be positive", d)
		}
		o.idle = d
		return nil
	}
}

// WithDialTimeout bounds how long a connection to the sandbox may take to
// open (default 10s).
func WithDialTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) error {
		if d <= 0 {
			return fmt.Errorf("dial timeout %s: must be positive", d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithLogger makes the proxy report failed connections to l.
func WithLogger(l *slog.Logger) ProxyOption {
	return func(o *proxyOptions) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.log = l
		return nil
	}
}

// ListenProxy binds address ("127.0.0.1:5432") on the host for network
// "tcp" or "udp". It fails with a [*PortInUseError] when the address is
// taken. [Proxy.Serve] then forwards what arrives through dial.
func ListenProxy(ctx context.Context, network, address string, dial DialFunc, opts ...ProxyOption) (*Proxy, error) {
	p := &Proxy{network: network, dial: dial, conns: map[io.Closer]struct{}{},
		opts: proxyOptions{idle: time.Minute, dialTimeout: 10 * time.Second, log: slog.New(slog.DiscardHandler)}}
	for _, o := range opts {
		if err := o(&p.opts); err != nil {
			return nil, fmt.Errorf("proxy %s: %w", address, err)
		}
	}
	var lc net.ListenConfig
	var err error
	switch network {
	case "tcp":
		p.ln, err = lc.Listen(ctx, "tcp", address)
	case "udp":
		p.pc, err = lc.ListenPacket(ctx, "udp", address)
	default:
		return nil, fmt.Errorf("proxy %s: protocol %q: use tcp or udp", address, network)
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, portInUse(network, address, err)
		}
		return nil, fmt.Errorf("publish %s/%s: %w", address, network, err)
	}
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr {
	if p.ln != nil {
		return p.ln.Addr()
	}
	return p.pc.LocalAddr()
}

// Close stops the proxy and closes every connection it forwards.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	var err error
	if p.ln != nil {
		err = p.ln.Close()
	} else {
		err = p.pc.Close()
	}
	for c := range conns {
		c.Close()
	}
	return err
}

// track registers c to be closed by Close; it is false once closed.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c io.Closer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// Serve forwards until ctx is done or the proxy is closed; it closes the
// proxy and waits for its connections before it returns.
func (p *Proxy) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer stop()
	var err error
	if p.ln != nil {
		err = p.serveTCP(ctx, &wg)
	} else {
		err = p.serveUDP(ctx, &wg)
	}
	p.Close()
	wg.Wait()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (p *Proxy) serveTCP(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !p.track(c) {
			c.Close()
			return net.ErrClosed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.untrack(c)
			defer c.Close()
			p.forward(ctx, c)
		}()
	}
}

func (p *Proxy) forward(ctx context.Context, c net.Conn) {
	dctx, cancel := context.WithTimeout(ctx, p.opts.dialTimeout)
	s, err := p.dial(dctx)
	cancel()
	if err != nil {
		p.opts.log.Warn("published port: cannot reach the sandbox", "listen", p.Addr().String(), "client", c.RemoteAddr().String(), "err", err)
		return
	}
	if !p.track(s) {
		s.Close()
		return
	}
	defer p.untrack(s)
	defer s.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	<-done
}

// udpSession is one UDP client's connection to the sandbox.
type udpSession struct {
	conn net.Conn
	mu   sync.Mutex
	last time.Time
}

func (p *Proxy) serveUDP(ctx context.Context, wg *sync.WaitGroup) error {
	var mu sync.Mutex
	sessions := map[string]*udpSession{}
	buf := make([]byte, 65535)
	for {
		n, client, err := p.pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		key := client.String()
		mu.Lock()
		s := sessions[key]
		mu.Unlock()
		if s == nil {
			dctx, cancel := context.WithTimeout(ctx, p.opts.dialTimeout)
			conn, err := p.dial(dctx)
			cancel()
			if err != nil {
				p.opts.log.Warn("published port: cannot reach the sandbox", "listen", p.Addr().String(), "client", key, "err", err)
				continue
			}
			if !p.track(conn) {
				conn.Close()
				return net.ErrClosed
			}
			s = &udpSession{conn: conn, last: time.Now()}
			mu.Lock()
			sessions[key] = s
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.replies(s, client)
				mu.Lock()
				delete(sessions, key)
				mu.Unlock()
				p.untrack(conn)
				conn.Close()
			}()
		}
		s.mu.Lock()
		s.last = time.Now()
		s.mu.Unlock()
		if _, err := s.conn.Write(buf[:n]); err != nil {
			p.opts.log.Debug("published port: datagram to the sandbox", "client", key, "err", err)
		}
	}
}

// replies sends the sandbox's datagrams back to client until the session
// has been idle for the idle timeout.
func (p *Proxy) replies(s *udpSession, client net.Addr) {
	buf := make([]byte, 65535)
	for {
		s.mu.Lock()
		deadline := s.last.Add(p.opts.idle)
		s.mu.Unlock()
		if !time.Now().Before(deadline) {
			return
		}
		s.conn.SetReadDeadline(deadline)
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // nothing listens yet; the client may retry
			}
			return
		}
		s.mu.Lock()
		s.last = time.Now()
		s.mu.Unlock()
		if _, err := p.pc.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}

// PortInUseError is returned by [ListenProxy] when the host address is
// already taken.
type PortInUseError struct {
	Network, Address string
	// PID and Command name the process holding the port, when it could be
	// found (0 and "" otherwise).
	PID     int
	Command string
	Err     error
}

// Error names the address, the holder when known, and what to do.
func (e *PortInUseError) Error() string {
	who := ""
	if e.PID > 0 {
		who = fmt.Sprintf(" by pid %d (%s)", e.PID, e.Command)
	}
	return fmt.Sprintf("publish %s/%s: the address is already in use%s: stop it or publish the port on another host port", e.Address, e.Network, who)
}

// Unwrap returns the listen error (EADDRINUSE).
func (e *PortInUseError) Unwrap() error { return e.Err }

func portInUse(network, address string, err error) error {
	e := &PortInUseError{Network: network, Address: address, Err: err}
	if _, port, perr := net.SplitHostPort(address); perr == nil {
		var n int
		if _, serr := fmt.Sscan(port, &n); serr == nil {
			e.PID, e.Command = portHolder(network, n)
		}
	}
	return e
}
