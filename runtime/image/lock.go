package image

import (
	"context"

	"github.com/sbx-dev/sbx/runtime/diskfile"
)

// fileLock is a held flock(2) on a lock file (runtime/diskfile). flock locks belong to the
// open file description, so two Stores in one process exclude each other just as two
// processes do.
type fileLock struct{ l *diskfile.Locked }

// lockFile takes a flock on path (exclusive, or shared when shared is set), waiting until it
// is free or ctx is done.
func lockFile(ctx context.Context, path string, shared bool) (*fileLock, error) {
	opts := []diskfile.LockOption{diskfile.Perm(0o600)}
	if shared {
		opts = append(opts, diskfile.Shared())
	}
	l, err := diskfile.Lock(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	return &fileLock{l: l}, nil
}

// unlock releases the lock. The lock file stays: removing it would race with a process that
// opened it and is about to lock it.
func (l *fileLock) unlock() {
	if l != nil {
		_ = l.l.Unlock()
	}
}
