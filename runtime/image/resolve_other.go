//go:build !linux

package image

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// haveOpenat2 is false: there is no openat2(2) here, so the unpacker
// always uses its portable resolver (unpacker.openPortable), which follows
// no symlink at all.
const haveOpenat2 = false

// linuxDevices is false: a layer's device numbers are Linux ones, which
// name other devices (or none) on this host. A privileged unpack records
// device nodes in the sidecar instead of creating them, and writes
// whiteouts and opaque directories in the xattr form (user.overlay.*),
// recorded in the sidecar too, as an unprivileged unpack does.
const linuxDevices = false

// dirPathFlag opens a directory only to resolve names beneath it; there is
// no O_PATH here.
const dirPathFlag = unix.O_RDONLY

// openBeneath opens p, relative to the layer root, with the portable
// resolver.
func (u *unpacker) openBeneath(p string, flags int) (int, error) {
	return u.openPortable(p, flags)
}

// mknodAt creates the node base in the directory pfd, which is name's
// parent beneath root. There is no mknodat(2) here, so the node is named
// by path, after checking that the path's parent is still the directory
// pfd resolved to (only this unpacker writes into the layer directory).
// Only FIFOs get here (linuxDevices is false).
func mknodAt(root string, pfd int, name, _ string, mode uint32, dev int) error {
	p := filepath.Join(root, filepath.FromSlash(name))
	var want, got unix.Stat_t
	if err := unix.Fstat(pfd, &want); err != nil {
		return err
	}
	if err := unix.Lstat(filepath.Dir(p), &got); err != nil {
		return err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("%w: the parent of %s changed during the unpack", ErrUnsafeLayer, name)
	}
	if mode&unix.S_IFMT == unix.S_IFIFO {
		return unix.Mkfifo(p, mode&0o7777)
	}
	return unix.Mknod(p, mode, dev)
}

// setTimesFd sets the access and modification times of fd to t, to the
// microsecond (there is no futimens(2) in x/sys/unix here).
func setTimesFd(fd int, t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Futimes(fd, []unix.Timeval{tv, tv}); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// syncFS is never called here: without syncfs(2) the portable unpacker
// fsyncs each file and directory of the layer itself.
func syncFS(string) error {
	return errors.New("syncfs(2) is Linux-only")
}
