package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// A checkout can be hostile: a repository may commit a .sbx/ whose entries are symlinks to
// files outside the project, so that sbx (often root) would append sandbox output to them or
// delete them. Nothing under .sbx/ is therefore used through a symlink: directories are
// checked with lstat before use, files are opened with O_NOFOLLOW or replaced by rename, and
// removal happens beneath a directory handle that refuses to leave it.

// UnsafeError is a path under .sbx/ that sbx refuses to use.
type UnsafeError struct {
	Path string
	Why  string // "is a symlink", "is not a directory", "is owned by uid 1000"
}

// Error says what is wrong and what to do.
func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s %s: sbx will not use it (a checkout could plant it to turn sbx against the host); remove it and run sbx again", e.Path, e.Why)
}

// EnsureDir makes path a directory sbx can trust: created 0700 when missing; otherwise it must
// be a real directory (not a symlink) owned by this user, and is tightened to 0700 when other
// users could enter it (so no setuid file inside is reachable by them).
func EnsureDir(path string) error {
	err := os.Mkdir(path, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return checkDir(path, true)
}

// CheckDir checks, without following a symlink, that path is a directory owned by this user.
func CheckDir(path string) error { return checkDir(path, false) }

func checkDir(path string, tighten bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &UnsafeError{Path: path, Why: "is a symlink"}
	case !fi.IsDir():
		return &UnsafeError{Path: path, Why: "is not a directory"}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, os.Geteuid())}
	}
	if tighten && fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(path, 0o700); err != nil {
			return fmt.Errorf("restrict %s to its owner: %w", path, err)
		}
	}
	return nil
}

// EnsureDirs ensures each directory from root down to root/rel (EnsureDir on each).
func EnsureDirs(root, rel string) error {
	if err := EnsureDir(root); err != nil {
		return err
	}
	cur := root
	for _, part := range splitRel(rel) {
		cur = filepath.Join(cur, part)
		if err := EnsureDir(cur); err != nil {
			return err
		}
	}
	return nil
}

func splitRel(rel string) []string {
	var parts []string
	for rel != "" && rel != "." {
		dir, file := filepath.Split(filepath.Clean(rel))
		parts = append([]string{file}, parts...)
		rel = filepath.Clean(dir)
		if rel == "/" || rel == "." {
			break
		}
	}
	return parts
}

// RemoveBeneath removes root/rel and everything under it without ever leaving root: a symlink
// on the way that points outside fails the removal instead of deleting what it points at.
func RemoveBeneath(root, rel string) error {
	r, err := os.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Join(root, rel), err)
	}
	defer r.Close()
	if err := r.RemoveAll(rel); err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Join(root, rel), err)
	}
	return nil
}

// OpenFile opens a file under .sbx/ like os.OpenFile, but never through a symlink at its last
// component (the directories above are checked by EnsureDir).
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if errors.Is(err, unix.ELOOP) {
		return nil, &UnsafeError{Path: path, Why: "is a symlink"}
	}
	return f, err
}

// ReadFile reads a file under .sbx/ without following a symlink at its last component.
func ReadFile(path string) ([]byte, error) {
	f, err := OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafeError{Path: path, Why: "is not a regular file"}
	}
	return io.ReadAll(f)
}
