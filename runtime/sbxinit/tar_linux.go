package sbxinit

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// extractTar extracts a tar stream into dir, keeping modes, owners and times. Every path is
// resolved inside dir (RESOLVE_IN_ROOT): neither ".." nor a symlink in the stream or in the
// sandbox takes a file out of it.
func extractTar(r io.Reader, dir string) error {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirTimes []dirTime
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + hdr.Name)[1:]
		if name == "" {
			continue
		}
		for _, part := range strings.Split(hdr.Name, "/") {
			if part == ".." {
				return fmt.Errorf("%s: a path with '..' is refused", hdr.Name)
			}
		}
		parent, leaf := path.Split(name)
		pfd, err := openIn(root, parent)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%s: a symlink or file is in the way (a copy stays inside %s)", hdr.Name, dir)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		err = extractOne(pfd, leaf, hdr, tr)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{name, hdr.ModTime})
		}
	}
	for i := len(dirTimes) - 1; i >= 0; i-- {
		d := dirTimes[i]
		fd, err := openIn(root, d.name)
		if err != nil {
			continue
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.t.UnixNano()), unix.NsecToTimespec(d.t.UnixNano())}
		_ = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		unix.Close(fd)
	}
	return nil
}

// openIn opens the directory p beneath root, creating missing directories (0755).
func openIn(root int, p string) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	p = strings.Trim(p, "/")
	if p == "" {
		p = "."
	}
	fd, err := unix.Openat2(root, p, how)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, leaf := path.Split(p)
	pfd, err := openIn(root, parent)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, leaf, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return unix.Openat2(pfd, leaf, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
}

func extractOne(pfd int, leaf string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, leaf, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := unix.Openat(pfd, leaf, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		return unix.Fchmod(fd, mode)
	case tar.TypeReg:
		fd, err := unix.Openat(pfd, leaf, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EISDIR) {
			if err := removeAt(pfd, leaf); err != nil {
				return err
			}
			fd, err = unix.Openat(pfd, leaf, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		}
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), leaf)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		// chown before chmod: chown clears the set-id bits.
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
		return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	case tar.TypeSymlink:
		if err := removeAt(pfd, leaf); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, leaf); err != nil {
			return err
		}
		if err := unix.Fchownat(pfd, leaf, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(pfd, leaf, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil // other entry types are skipped
}

// removeAt removes leaf (a file, a link or an empty directory).
func removeAt(pfd int, leaf string) error {
	err := unix.Unlinkat(pfd, leaf, 0)
	if errors.Is(err, syscall.EISDIR) {
		err = unix.Unlinkat(pfd, leaf, unix.AT_REMOVEDIR)
	}
	return err
}
