//go:build !linux

package krun

import "fmt"

func mountOverlay(*Overlay) error {
	return fmt.Errorf("an overlay root mounted by the VMM child needs Linux; use layers (krun_set_overlayfs_root) or a root directory: %w", ErrUnsupported)
}

const ownMountNamespace = 0
