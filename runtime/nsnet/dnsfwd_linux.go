//go:build linux

package nsnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenDNS binds addr for UDP and TCP with SO_REUSEPORT, so that the
// forwarders of the sandboxes of one network share their gateway's port.
func listenDNS(ctx context.Context, addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", addr.String())
	if err != nil {
		return nil, nil, err
	}
	ln, err := lc.Listen(ctx, "tcp4", addr.String())
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	udp, ok1 := pc.(*net.UDPConn)
	tcp, ok2 := ln.(*net.TCPListener)
	if !ok1 || !ok2 {
		pc.Close()
		ln.Close()
		return nil, nil, errors.New("unexpected socket types")
	}
	return udp, tcp, nil
}
