package state

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/sbx-dev/sbx/planner"
)

// Machine answers the planner's questions about this host (planner.Machine) by trying: a
// port is in use when binding it fails with "address in use", a path exists when stat finds it.
type Machine struct{}

var _ planner.Machine = Machine{}

// PortInUse binds hostIP:port/proto and closes it at once; it reports true only when the bind
// failed because another socket has the address. Other failures (a port below 1024 without the
// privilege, an address not on this host) are not "in use": applying reports them.
func (Machine) PortInUse(hostIP string, port int, proto string) bool {
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	addr := net.JoinHostPort(hostIP, strconv.Itoa(port))
	var err error
	switch proto {
	case "udp":
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	default:
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	}
	return errors.Is(err, syscall.EADDRINUSE)
}

// PathExists reports whether path exists (following symbolic links).
func (Machine) PathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
