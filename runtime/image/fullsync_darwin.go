package image

import (
	"errors"

	"golang.org/x/sys/unix"
)

// fullSync asks the drive to write its cache to permanent storage
// (F_FULLFSYNC): on macOS fsync(2) only hands the data to the drive. One
// call after the layer's fsyncs makes them all durable. Like os.File.Sync,
// it falls back to fsync where the filesystem does not support it.
func fullSync(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENOTTY) {
		return unix.Fsync(fd)
	}
	return err
}
