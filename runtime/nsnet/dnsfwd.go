package nsnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

const (
	dnsPort = 53
	// dnsHeader is the size of a DNS message's header.
	dnsHeader = 12
	// dnsTCPIdle is how long a TCP client may stay silent between queries.
	dnsTCPIdle = 10 * time.Second
)

// DNSForwarder answers the DNS queries that sandboxes send to their
// gateway's port 53 (UDP and TCP) by relaying them, unchanged, to the
// host's name servers. It neither parses nor caches: an answer is matched to
// its query by the socket it comes back on (and the query's ID). Sandboxes
// of scope public and any may reach it; the firewall keeps group and none
// out.
type DNSForwarder struct {
	addr      netip.AddrPort
	udp       *net.UDPConn
	tcp       *net.TCPListener
	upstreams []netip.AddrPort
	opts      dnsOptions

	ctx    context.Context
	cancel context.CancelFunc
	// One slot per UDP query and per TCP client in flight, apart so that
	// idle TCP clients cannot starve UDP.
	udpSem, tcpSem chan struct{}
	wg             sync.WaitGroup
}

type dnsOptions struct {
	timeout time.Duration
	max     int
	log     *slog.Logger
}

// DNSOption configures a [DNSForwarder].
type DNSOption func(*dnsOptions) error

// WithDNSTimeout bounds how long each upstream may take to answer a query
// before the next one is tried (default 2s).
func WithDNSTimeout(d time.Duration) DNSOption {
	return func(o *dnsOptions) error {
		if d <= 0 {
			return fmt.Errorf("DNS timeout %s: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithDNSMaxQueries bounds the UDP queries, and apart the TCP connections,
// handled at once (default 64 each). UDP queries beyond it are dropped (the
// client retries); TCP connections wait to be accepted.
func WithDNSMaxQueries(n int) DNSOption {
	return func(o *dnsOptions) error {
		if n <= 0 {
			return fmt.Errorf("DNS max queries %d: must be positive", n)
		}
		o.max = n
		return nil
	}
}

// WithDNSLogger makes the forwarder report failures to l.
func WithDNSLogger(l *slog.Logger) DNSOption {
	return func(o *dnsOptions) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.log = l
		return nil
	}
}

// ServeDNS starts a DNS forwarder for the sandbox of h, which must have
// scope public or any, on UDP and TCP port 53 of its gateway (the host's
// address on the bridge, [Handle.Gateway]). It relays each query to the
// upstreams in order (see [DNSUpstreams]), the next one when one fails or
// stays silent, and answers SERVFAIL when none answers. It runs until ctx is
// done or [DNSForwarder.Close] is called, so ctx should last as long as the
// sandbox. Close it before [Teardown].
//
// Each sandbox has its own forwarder, even when several share a network (and
// so a gateway address): the sockets are bound with SO_REUSEPORT, the
// kernel spreads the queries over the forwarders of the network, and the
// others keep answering when one of them stops. A forwarder therefore lives
// as long as its sandbox, in whatever process supervises it. Binding fails
// when a process that does not use SO_REUSEPORT (a DNS server on 0.0.0.0:53,
// say) holds the port: the sandbox then has to make do with [Nameservers].
func ServeDNS(ctx context.Context, h *Handle, upstreams []netip.AddrPort, opts ...DNSOption) (*DNSForwarder, error) {
	if h == nil {
		return nil, errors.New("DNS forwarder: no sandbox handle")
	}
	if s := h.net.Scope; s != ScopePublic && s != ScopeAny {
		return nil, fmt.Errorf("DNS forwarder for sandbox %s: scope %s has no DNS (only public and any do)", h.net.Name, s)
	}
	if len(upstreams) == 0 {
		return nil, fmt.Errorf("DNS forwarder for sandbox %s: no upstream name server (the host's /etc/resolv.conf lists none)", h.net.Name)
	}
	for _, u := range upstreams {
		if !u.IsValid() || u.Port() == 0 {
			return nil, fmt.Errorf("DNS forwarder for sandbox %s: invalid upstream %s", h.net.Name, u)
		}
	}
	f := &DNSForwarder{
		addr:      netip.AddrPortFrom(h.Gateway(), dnsPort),
		upstreams: append([]netip.AddrPort(nil), upstreams...),
		opts:      dnsOptions{timeout: 2 * time.Second, max: 64, log: slog.New(slog.DiscardHandler)},
	}
	for _, o := range opts {
		if err := o(&f.opts); err != nil {
			return nil, fmt.Errorf("DNS forwarder for sandbox %s: %w", h.net.Name, err)
		}
	}
	var err error
	f.udp, f.tcp, err = listenDNS(ctx, f.addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			for _, network := range [...]string{"udp", "tcp"} {
				if pid, cmd := portHolder(network, dnsPort); pid > 0 {
					err = fmt.Errorf("%w (port %d/%s is held by pid %d, %s)", err, dnsPort, network, pid, cmd)
					break
				}
			}
		}
		return nil, fmt.Errorf("DNS forwarder for sandbox %s on %s: %w", h.net.Name, f.addr, err)
	}
	f.udpSem, f.tcpSem = make(chan struct{}, f.opts.max), make(chan struct{}, f.opts.max)
	f.ctx, f.cancel = context.WithCancel(ctx)
	context.AfterFunc(f.ctx, func() {
		f.udp.Close()
		f.tcp.Close()
	})
	f.wg.Add(2)
	go f.serveUDP()
	go f.serveTCP()
	return f, nil
}

// Addr is the address the forwarder listens on: the gateway's port 53.
func (f *DNSForwarder) Addr() netip.AddrPort { return f.addr }

// Close stops the forwarder and waits for the queries in flight to end.
func (f *DNSForwarder) Close() error {
	f.cancel()
	f.wg.Wait()
	return nil
}

func (f *DNSForwarder) serveUDP() {
	defer f.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, client, err := f.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.failed("UDP", err) {
				return
			}
			continue
		}
		if n < dnsHeader {
			continue
		}
		select {
		case f.udpSem <- struct{}{}:
		default:
			f.opts.log.Debug("DNS forwarder: too many queries, dropped one", "client", client.String())
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.udpSem }()
			if a := f.exchange("udp", q); a != nil && f.ctx.Err() == nil {
				if _, err := f.udp.WriteToUDPAddrPort(a, client); err != nil {
					f.opts.log.Debug("DNS forwarder: answer", "client", client.String(), "err", err)
				}
			}
		}()
	}
}

func (f *DNSForwarder) serveTCP() {
	defer f.wg.Done()
	for {
		select {
		case f.tcpSem <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		c, err := f.tcp.Accept()
		if err != nil {
			<-f.tcpSem
			if f.failed("TCP", err) {
				return
			}
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.tcpSem }()
			f.serveConn(c)
		}()
	}
}

// failed handles an error of a listener: true when the forwarder is
// closing; otherwise it logs the error and pauses a little before the
// listener is tried again (EMFILE, say).
func (f *DNSForwarder) failed(what string, err error) bool {
	if f.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return true
	}
	f.opts.log.Warn("DNS forwarder: "+what+" listener", "addr", f.addr.String(), "err", err)
	select {
	case <-f.ctx.Done():
		return true
	case <-time.After(100 * time.Millisecond):
		return false
	}
}

// serveConn answers the queries of one TCP client, one after the other,
// until it closes the connection or stays idle.
func (f *DNSForwarder) serveConn(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { c.Close() })
	defer stop()
	for {
		c.SetReadDeadline(time.Now().Add(dnsTCPIdle))
		q, err := readDNS(c)
		if err != nil {
			return
		}
		a := f.exchange("tcp", q)
		if a == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(f.opts.timeout))
		if err := writeDNS(c, a); err != nil {
			return
		}
	}
}

// exchange sends query to the upstreams in turn over network ("udp" or
// "tcp") and returns the first answer, or SERVFAIL when none answers (nil
// when the query is too malformed for that, or the forwarder is closing).
func (f *DNSForwarder) exchange(network string, q []byte) []byte {
	for _, u := range f.upstreams {
		if f.ctx.Err() != nil {
			return nil
		}
		a, err := f.ask(network, u, q)
		if err == nil {
			return a
		}
		f.opts.log.Debug("DNS forwarder: upstream failed", "upstream", u.String(), "network", network, "err", err)
	}
	if f.ctx.Err() != nil {
		return nil
	}
	f.opts.log.Warn("DNS forwarder: no upstream answered", "upstreams", fmt.Sprint(f.upstreams), "network", network)
	return servfail(q)
}

func (f *DNSForwarder) ask(network string, u netip.AddrPort, q []byte) ([]byte, error) {
	d := net.Dialer{Timeout: f.opts.timeout}
	c, err := d.DialContext(f.ctx, network, u.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(f.opts.timeout))
	if network == "tcp" {
		if err := writeDNS(c, q); err != nil {
			return nil, err
		}
		for {
			a, err := readDNS(c)
			if err != nil {
				return nil, err
			}
			if answers(a, q) {
				return a, nil
			}
		}
	}
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if answers(buf[:n], q) {
			return buf[:n], nil
		}
	}
}

// answers reports whether a is a response with the ID of query q.
func answers(a, q []byte) bool {
	return len(a) >= dnsHeader && a[0] == q[0] && a[1] == q[1] && a[2]&0x80 != 0
}

// readDNS reads one length-prefixed DNS message from a TCP connection.
func readDNS(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n < dnsHeader {
		return nil, fmt.Errorf("DNS message of %d bytes", n)
	}
	m := make([]byte, n)
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeDNS writes one length-prefixed DNS message to a TCP connection.
func writeDNS(w io.Writer, m []byte) error {
	if len(m) > 65535 {
		return fmt.Errorf("DNS message of %d bytes", len(m))
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(m)), uint16(len(m)))
	_, err := w.Write(append(b, m...))
	return err
}

// servfail builds a SERVFAIL response to query q, with its ID, opcode, RD
// flag and question; nil when q is not a query with one question.
func servfail(q []byte) []byte {
	if len(q) < dnsHeader || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	off := dnsHeader
	for {
		if off >= len(q) {
			return nil
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l&0xc0 != 0 { // a compression pointer has no place in a query's only name
			return nil
		}
		off += l
	}
	off += 4 // type and class
	if off > len(q) {
		return nil
	}
	r := make([]byte, off)
	copy(r, q[:off])
	r[2] = 0x80 | q[2]&0x79 // QR, the opcode and RD
	r[3] = 0x80 | 2         // RA, SERVFAIL
	binary.BigEndian.PutUint16(r[6:], 0)
	binary.BigEndian.PutUint16(r[8:], 0)
	binary.BigEndian.PutUint16(r[10:], 0)
	return r
}
