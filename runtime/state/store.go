// Package state is the on-disk store of a project's planner.State: the .sbx/ directory next to
// the Sandboxfile, state.json written atomically, state.lock held by every command that writes,
// and the liveness checks that tell a running supervisor from a dead or recycled pid.
//
// Reading never locks and never creates anything; only a held Lock writes.
package state

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/diskfile"
)

// File names inside the state directory.
const (
	DirName       = ".sbx"
	StateFileName = "state.json"
	LockFileName  = "state.lock"
	tempPrefix    = "." + StateFileName + ".tmp-"
)

// Store is the state store of one project. It holds only paths: creating one touches nothing.
type Store struct {
	dir string
}

// New returns the store of the project whose Sandboxfile lies in projectDir; its directory is
// projectDir/.sbx. Nothing is read or created.
func New(projectDir string) *Store {
	return &Store{dir: filepath.Join(projectDir, DirName)}
}

// Dir returns the state directory (.sbx).
func (s *Store) Dir() string { return s.dir }

// StatePath returns the path of state.json.
func (s *Store) StatePath() string { return filepath.Join(s.dir, StateFileName) }

// LockPath returns the path of state.lock.
func (s *Store) LockPath() string { return filepath.Join(s.dir, LockFileName) }

// CorruptError is a state file that does not parse. sbx never overwrites it.
type CorruptError struct {
	Path string
	Err  error
}

// Error names the file and says what to do.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is unreadable (%v); sbx will not overwrite it: repair it, or move it away to start from an empty state (running sandboxes are then forgotten)", e.Path, e.Err)
}

// Unwrap returns the parse error.
func (e *CorruptError) Unwrap() error { return e.Err }

// VersionError is a state file written by a newer sbx. sbx never overwrites it.
type VersionError struct {
	Path    string
	Version int
}

// Error names the file and both versions.
func (e *VersionError) Error() string {
	return fmt.Sprintf("state file %s has version %d, newer than this sbx reads (%d); upgrade sbx", e.Path, e.Version, planner.StateVersion)
}

// Read returns the state, or an empty state when none was ever written. It takes no lock (a
// write is an atomic rename, so a reader sees the old or the new file, whole) and creates
// nothing. Leftover temporary files of a crashed write are ignored.
func (s *Store) Read() (*planner.State, error) {
	st, err := readState(s.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return planner.NewState(), nil
	}
	return st, err
}

func readState(path string) (*planner.State, error) {
	b, err := ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read state: %w", err)
	}
	// The version is checked first so a newer format is reported as such, not as corrupt.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	if head.Version == nil {
		return nil, &CorruptError{Path: path, Err: errors.New("no version")}
	}
	if *head.Version > planner.StateVersion {
		return nil, &VersionError{Path: path, Version: *head.Version}
	}
	if *head.Version < 1 {
		return nil, &CorruptError{Path: path, Err: fmt.Errorf("invalid version %d", *head.Version)}
	}
	st, err := planner.DecodeState(b, *head.Version)
	if err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	if st.Sandboxes == nil {
		st.Sandboxes = map[string]*planner.Record{}
	}
	for name, r := range st.Sandboxes {
		if r == nil {
			return nil, &CorruptError{Path: path, Err: fmt.Errorf("sandbox %q: null record", name)}
		}
		if r.Name == "" {
			r.Name = name
		}
	}
	return st, nil
}

// ensureDir creates the state directory and its .gitignore ("*") when missing.
// It refuses a .sbx that is a symlink or belongs to someone else (EnsureDir).
func (s *Store) ensureDir() error {
	if err := EnsureDir(s.dir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	gi := filepath.Join(s.dir, ".gitignore")
	if _, err := os.Lstat(gi); errors.Is(err, fs.ErrNotExist) {
		if err := diskfile.WriteAtomic(gi, []byte("*\n"), 0o644); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
	}
	return nil
}

// cleanTemps removes the temporary files a crashed write of state.json left behind. Only the
// lock holder calls it, so no such write is in flight. Temporary .gitignore files are left
// alone: ensureDir writes them before taking the lock, so one may belong to a live process.
func (s *Store) cleanTemps() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

// newLineage returns a random lineage id in the UUID v4 form.
func newLineage() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
