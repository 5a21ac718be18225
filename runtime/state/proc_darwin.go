package state

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// procStart reads the start time of pid with sysctl kern.proc.pid, in microseconds since the
// epoch.
func procStart(pid int) (start uint64, zombie bool, err error) {
	if pid <= 0 {
		return 0, false, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return 0, false, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
		}
		return 0, false, fmt.Errorf("process %d: %w", pid, err)
	}
	if kp.Proc.P_pid != int32(pid) {
		return 0, false, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	tv := kp.Proc.P_starttime
	const szomb = 5 // SZOMB in <sys/proc.h>
	return uint64(tv.Sec)*1_000_000 + uint64(tv.Usec), kp.Proc.P_stat == szomb, nil
}
