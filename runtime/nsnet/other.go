//go:build !linux

package nsnet

import (
	"context"
	"net"
	"net/netip"
)

// Setup needs Linux; elsewhere it returns ErrNeedsLinux.
func Setup(context.Context, Net) (*Handle, error) { return nil, ErrNeedsLinux }

// SetupTap needs Linux; elsewhere it returns ErrNeedsLinux.
func SetupTap(context.Context, Net) (*Handle, error) { return nil, ErrNeedsLinux }

// Teardown needs Linux; elsewhere it returns ErrNeedsLinux.
func Teardown(context.Context, string, string) error { return ErrNeedsLinux }

// TeardownProject needs Linux; elsewhere it returns ErrNeedsLinux.
func TeardownProject(context.Context, string) error { return ErrNeedsLinux }

// List needs Linux; elsewhere it returns ErrNeedsLinux.
func List(context.Context, string) (Resources, error) { return Resources{}, ErrNeedsLinux }

// Preflight reports that the ns driver's networking needs Linux.
func Preflight(context.Context) []Problem {
	return []Problem{{Check: "os", Detail: ErrNeedsLinux.Error(), Fix: "use the krun driver", Fatal: true}}
}

// PreflightTap reports that the ns driver's networking needs Linux.
func PreflightTap(ctx context.Context) []Problem { return Preflight(ctx) }

// Within needs Linux; elsewhere it returns ErrNeedsLinux.
func Within(string, func() error) error { return ErrNeedsLinux }

// DialNetNS needs Linux; elsewhere it returns ErrNeedsLinux.
func DialNetNS(context.Context, string, string, string) (net.Conn, error) {
	return nil, ErrNeedsLinux
}

func portHolder(string, int) (int, string) { return 0, "" }

func listenDNS(context.Context, netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	return nil, nil, ErrNeedsLinux
}
