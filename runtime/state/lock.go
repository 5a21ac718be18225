package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/diskfile"
)

// DefaultLockTimeout is how long Lock waits for another sbx by default (--lock-timeout).
const DefaultLockTimeout = 30 * time.Second

// LockInfo says who holds the lock; the holder writes it into state.lock after acquiring it.
type LockInfo struct {
	Pid     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// String is "pid N (command) since T", as lock errors show it.
func (i LockInfo) String() string {
	if i.Pid == 0 {
		return "another sbx (its pid is not known yet)"
	}
	s := fmt.Sprintf("pid %d", i.Pid)
	if i.Command != "" {
		s += fmt.Sprintf(" (%s)", i.Command)
	}
	if !i.Since.IsZero() {
		s += " since " + i.Since.Format(time.RFC3339)
	}
	return s
}

// ErrLocked is wrapped by the error of a Lock that gave up waiting.
var ErrLocked = errors.New("state is locked")

// ErrStateChanged is wrapped by the error of a Write whose state is not the one on disk: it
// was read before another writer's update, or belongs to another lineage.
var ErrStateChanged = errors.New("state changed on disk")

// LockedError is returned when the lock stayed held by another process until the timeout (or
// until ctx was done).
type LockedError struct {
	Path   string
	Holder LockInfo
	Waited time.Duration
	Err    error // ctx.Err() when the wait was cancelled, else nil
}

// Error names the holder and says what to do.
func (e *LockedError) Error() string {
	msg := fmt.Sprintf("state is locked by %s (%s)", e.Holder, e.Path)
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg + fmt.Sprintf(": gave up after %s; wait for that command to finish, or raise --lock-timeout", e.Waited)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap returns the context's error, if the wait was cancelled.
func (e *LockedError) Unwrap() error { return e.Err }

// LockOption configures Lock.
type LockOption func(*lockOptions) error

type lockOptions struct {
	timeout time.Duration
	command string
	now     func() time.Time
}

// WithTimeout sets how long Lock waits for another holder; 0 means not at all.
func WithTimeout(d time.Duration) LockOption {
	return func(o *lockOptions) error {
		if d < 0 {
			return fmt.Errorf("negative lock timeout %s", d)
		}
		o.timeout = d
		return nil
	}
}

// WithCommand sets the command line recorded in the lock file (default: os.Args).
func WithCommand(cmd string) LockOption {
	return func(o *lockOptions) error { o.command = cmd; return nil }
}

// WithClock sets the clock of the lock's Since time.
func WithClock(now func() time.Time) LockOption {
	return func(o *lockOptions) error {
		if now == nil {
			return errors.New("nil clock")
		}
		o.now = now
		return nil
	}
}

// Lock is a held state lock: the only way to write the state.
type Lock struct {
	store *Store
	f     *os.File
	info  LockInfo
}

// Lock takes the state lock, creating .sbx/ (with its .gitignore) if needed. While another
// process holds it, Lock waits up to the timeout (DefaultLockTimeout unless WithTimeout), then
// fails with a *LockedError naming the holder. A lock file left by a process that died is not
// held (flock locks die with their holder), so it is taken at once. Temporary files of a
// crashed write are removed once the lock is held.
func (s *Store) Lock(ctx context.Context, opts ...LockOption) (*Lock, error) {
	o := lockOptions{timeout: DefaultLockTimeout, command: strings.Join(os.Args, " "), now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("lock state: %w", err)
		}
	}
	if err := s.ensureDir(); err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	path := s.LockPath()
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	held, err := diskfile.Lock(wctx, path, diskfile.Perm(0o600))
	if err != nil {
		if wctx.Err() == nil {
			return nil, fmt.Errorf("lock state: %w", err)
		}
		le := &LockedError{Path: path, Holder: readHolderAt(path), Waited: time.Since(start).Round(time.Millisecond)}
		if ctx.Err() != nil {
			le.Err = ctx.Err()
		} else {
			le.Waited = o.timeout
		}
		return nil, le
	}
	f := held.File()

	l := &Lock{store: s, f: f, info: LockInfo{Pid: os.Getpid(), Command: o.command, Since: o.now().UTC()}}
	// The holder record is best effort: with the disk full, stopping sandboxes must still work,
	// and nothing it needs is written first.
	b, _ := json.Marshal(l.info)
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	s.cleanTemps()
	return l, nil
}

// readHolderAt reads the holder's info from the lock file; a holder that has not written it
// yet (or could not) reads as the zero LockInfo.
func readHolderAt(path string) LockInfo {
	var info LockInfo
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return info
	}
	defer f.Close()
	if b, err := io.ReadAll(io.LimitReader(f, 1<<16)); err == nil {
		_ = json.Unmarshal(b, &info)
	}
	return info
}

// Info returns what the lock file says about this holder.
func (l *Lock) Info() LockInfo { return l.info }

// Read reads the state under the lock (see Store.Read).
func (l *Lock) Read() (*planner.State, error) { return l.store.Read() }

// Write writes st as the new state, atomically: its version is set, a lineage is given on the
// first write, and its serial is incremented (st is updated on success). It refuses, without
// touching the file, to overwrite a state file that does not parse or has a newer version, and
// a state whose serial or lineage differs from the file's (ErrStateChanged).
func (l *Lock) Write(st *planner.State) error {
	if l.f == nil {
		return errors.New("write state: the lock was released")
	}
	path := l.store.StatePath()
	disk, err := readState(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("write state: %w", err)
	case disk.Lineage != "" && st.Lineage != disk.Lineage:
		return fmt.Errorf("write state %s: %w: lineage %s on disk, %s in memory", path, ErrStateChanged, disk.Lineage, orNone(st.Lineage))
	case disk.Serial != st.Serial:
		return fmt.Errorf("write state %s: %w: serial %d on disk, %d when read; read it again", path, ErrStateChanged, disk.Serial, st.Serial)
	}
	out := *st
	out.Version = planner.StateVersion
	if out.Lineage == "" {
		out.Lineage = newLineage()
	}
	out.Serial = st.Serial + 1
	if out.Sandboxes == nil {
		out.Sandboxes = map[string]*planner.Record{}
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("write state: encode: %w", err)
	}
	if err := diskfile.WriteAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	st.Version, st.Lineage, st.Serial, st.Sandboxes = out.Version, out.Lineage, out.Serial, out.Sandboxes
	return nil
}

// Unlock releases the lock. The lock file stays (removing it would race with a process about
// to lock it); its holder info is cleared.
func (l *Lock) Unlock() error {
	if l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor of the description releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock state: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
