package krun

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts o in the calling process's mount namespace, which must
// be its own (Spawn starts the child with CLONE_NEWNS): first every mount is
// made private so nothing propagates back to the host, then the overlay goes
// on o.Merged. The namespace, and the mount with it, ends with the process.
func mountOverlay(o *Overlay) error {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink("/proc/" + strconv.Itoa(os.Getppid()) + "/ns/mnt")
	if err1 != nil || err2 != nil || self == parent {
		return fmt.Errorf("mount overlay root: the VMM process is not in a mount namespace of its own (start it with krun.Spawn): %w", ErrInvalidArgument)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("mount overlay root: make mounts private: %w", err)
	}
	// overlayfs lists lowerdir top first.
	lowers := make([]string, len(o.Lower))
	for i, l := range o.Lower {
		lowers[len(o.Lower)-1-i] = l
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work
	if len(data) < os.Getpagesize() {
		if err := unix.Mount("overlay", o.Merged, "overlay", unix.MS_NODEV, data); err != nil {
			return fmt.Errorf("mount overlay root on %s: %w (the writable layer needs a file system overlayfs accepts as upper, on the same file system as the work directory)", o.Merged, err)
		}
		return nil
	}
	// Too long for mount(2)'s one page: the new mount API takes one layer
	// at a time (Linux 6.8+).
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount overlay root: %d layers are too many for mount(2) and fsopen failed: %w", len(o.Lower), err)
	}
	defer unix.Close(fd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return fmt.Errorf("mount overlay root: layer %s (lowerdir+ needs Linux 6.8): %w", l, err)
		}
	}
	if err := unix.FsconfigSetString(fd, "upperdir", o.Upper); err != nil {
		return fmt.Errorf("mount overlay root: upper: %w", err)
	}
	if err := unix.FsconfigSetString(fd, "workdir", o.Work); err != nil {
		return fmt.Errorf("mount overlay root: work: %w", err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount overlay root: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return fmt.Errorf("mount overlay root: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, o.Merged, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay root on %s: %w", o.Merged, err)
	}
	return nil
}

// ownMountNamespace gives the VMM child its own mount namespace, for an
// overlay root.
func ownMountNamespace(a *syscall.SysProcAttr) { a.Cloneflags |= unix.CLONE_NEWNS }
