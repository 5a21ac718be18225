package krun

import (
	"context"
	"syscall"
)

// childSysProcAttr makes the kernel send SIGTERM to the VMM child when the
// thread that started it dies. The Go runtime does not retire idle threads
// (only threads locked by a goroutine that exits), and Spawn does not lock,
// so in practice this fires when the parent process dies. Go's fork code
// also checks the parent after prctl, closing the race with a parent that
// dies during the fork.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// watchParent is unnecessary on Linux: Pdeathsig covers it.
func watchParent(context.Context) {}
