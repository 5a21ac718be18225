//go:build !linux

package krun

import (
	"context"
	"os"
	"syscall"
	"time"
)

func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// watchParent stands in for Linux's Pdeathsig: when the parent dies the child
// is re-parented, and the VMM process exits. The goroutine keeps running while
// libkrun owns the main thread.
func watchParent(ctx context.Context) {
	ppid := os.Getppid()
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
					return
				}
			}
		}
	}()
}
