//go:build !linux && !darwin

package state

import (
	"errors"
	"fmt"
)

// procStart is not implemented on this system: statuses observe as unknown.
func procStart(pid int) (start uint64, zombie bool, err error) {
	return 0, false, fmt.Errorf("process %d: %w", pid, errors.ErrUnsupported)
}
