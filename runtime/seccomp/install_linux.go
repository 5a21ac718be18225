//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install sets no_new_privs and loads prog on the calling thread only, so
// that whatever that thread forks and executes next runs under both. The
// caller must be locked to its OS thread (runtime.LockOSThread); the
// process's other threads are unaffected.
func Install(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > 0xffff {
		return errors.New("install seccomp filter: empty or oversized program")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("install seccomp filter: %w (the kernel needs CONFIG_SECCOMP_FILTER)", errno)
	}
	return nil
}
