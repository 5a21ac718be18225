// Package diskfile holds the two ways sbx changes files it keeps: under a flock(2) lock file,
// and by atomic replacement (temporary file in the same directory, fsync, rename, fsync of the
// directory), so a reader or a crash at any point sees the old content or the new, never half.
package diskfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is wrapped by TryLock's error when another holder has the lock.
var ErrWouldBlock = errors.New("held by another process")

// Locked is a held lock on a lock file. flock locks belong to the open file description, so
// two holders in one process exclude each other just as two processes do, and a holder that
// dies releases its lock with its last descriptor.
type Locked struct{ f *os.File }

// LockOption configures Lock and TryLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	shared bool
	perm   os.FileMode
}

// Shared takes a shared lock instead of an exclusive one.
func Shared() LockOption { return func(o *lockOptions) { o.shared = true } }

// Perm sets the mode of a lock file that does not exist yet (default 0600).
func Perm(mode os.FileMode) LockOption { return func(o *lockOptions) { o.perm = mode } }

// Lock opens (creating it if needed, never through a symlink) and locks path, waiting while
// another process holds it until ctx is done.
func Lock(ctx context.Context, path string, opts ...LockOption) (*Locked, error) {
	l, how, err := open(path, opts)
	if err != nil {
		return nil, err
	}
	delay := time.Millisecond
	for {
		err := unix.Flock(int(l.f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			l.f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			l.f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// TryLock is Lock without waiting: while another process holds the lock it fails with an
// error wrapping ErrWouldBlock; the Locked it also returns then is nil.
func TryLock(path string, opts ...LockOption) (*Locked, error) {
	l, how, err := open(path, opts)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(l.f.Fd()), how|unix.LOCK_NB); err != nil {
		l.f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrWouldBlock)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return l, nil
}

func open(path string, opts []LockOption) (*Locked, int, error) {
	o := lockOptions{perm: 0o600}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, o.perm)
	if err != nil {
		return nil, 0, fmt.Errorf("open lock %s: %w", path, err)
	}
	how := unix.LOCK_EX
	if o.shared {
		how = unix.LOCK_SH
	}
	return &Locked{f: f}, how, nil
}

// File is the open lock file, for a holder that records itself in it.
func (l *Locked) File() *os.File { return l.f }

// Unlock releases the lock. The lock file stays: removing it would race with a process that
// opened it and is about to lock it.
func (l *Locked) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// WriteAtomic writes data to path with mode perm so that a reader, or a crash at any point,
// sees either the old content or the new one. It never writes through a symlink at path: the
// rename replaces the link itself.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so a rename or creation in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
