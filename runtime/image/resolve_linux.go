package image

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// haveOpenat2 says whether openat2(2) with RESOLVE_BENEATH confines path
// resolution to the layer directory. Where it does not exist, the
// unpacker always uses its portable resolver (unpacker.openPortable).
const haveOpenat2 = true

// linuxDevices says whether device numbers in a layer name this host's
// devices, so that a privileged unpack creates device nodes and the
// overlayfs kernel whiteout form (0:0 character devices,
// trusted.overlay.opaque).
const linuxDevices = true

// dirPathFlag opens a directory only to resolve names beneath it.
const dirPathFlag = unix.O_PATH

func beneath(flags uint64) *unix.OpenHow {
	return &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
}

// openBeneath opens p, relative to the layer root, with openat2
// RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS: symlinks are followed only while
// they stay beneath the root. The portable unpacker walks p instead.
func (u *unpacker) openBeneath(p string, flags int) (int, error) {
	if u.portable {
		return u.openPortable(p, flags)
	}
	if p == "" {
		p = "."
	}
	return unix.Openat2(u.rootFd, p, beneath(uint64(flags)))
}

func mknodAt(_ string, pfd int, _, base string, mode uint32, dev int) error {
	return unix.Mknodat(pfd, base, mode, dev)
}

func setTimesFd(fd int, t time.Time) error {
	if err := unix.UtimesNanoAt(fd, "", timespecs(t), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// fullSync is a no-op: on Linux fsync(2) already flushes the drive's
// write cache.
func fullSync(int) error { return nil }

// syncFS flushes the filesystem holding dir (syncfs(2)): one call instead
// of an fsync per file of the layer.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
