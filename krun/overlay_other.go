//go:build !linux

package krun

import (
	"fmt"
	"syscall"
)

func mountOverlay(*Overlay) error {
	return fmt.Errorf("an overlay root mounted by the VMM child needs Linux; use layers (krun_set_overlayfs_root) or a root directory: %w", ErrUnsupported)
}

// ownMountNamespace does nothing: mountOverlay refuses an overlay root here.
func ownMountNamespace(*syscall.SysProcAttr) {}
