//go:build linux

package nsnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sbx-dev/sbx/runtime/diskfile"
)

// lock takes /run/sbx/net.lock, shared by every sbx process on the host, so
// that bridges, address allocation and nftables changes are never raced.
func lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	l, err := diskfile.Lock(ctx, filepath.Join(lockDir, "net.lock"))
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	return func() { _ = l.Unlock() }, nil
}
