package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafeLayer is wrapped by the error that refuses a layer entry which
// would write outside its layer directory, create a device node without
// privilege, or otherwise misuse the unpacker. The error names the entry.
var ErrUnsafeLayer = errors.New("unsafe layer")

// ErrLayerTooLarge is wrapped by the error that refuses a layer whose
// decompressed size exceeds the store's limit.
var ErrLayerTooLarge = errors.New("layer exceeds the unpack size limit")

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	paxXattr       = "SCHILY.xattr."
)

// sidecar records what an unprivileged unpack could not express on disk.
// It is written beside the layer directory as <diffid>.json.
type sidecar struct {
	// Owners maps entries whose owner is not 0:0 to [uid, gid].
	Owners map[string][2]int `json:"owners,omitempty"`
	// Whiteouts lists the paths hidden by this layer.
	Whiteouts []string `json:"whiteouts,omitempty"`
	// Opaque lists the directories that hide the lower layers' content.
	Opaque []string `json:"opaque,omitempty"`
	// Devices lists the device nodes of the layer, which are never
	// created (and hard links to them).
	Devices []string `json:"devices,omitempty"`
}

func (s *sidecar) empty() bool {
	return len(s.Owners) == 0 && len(s.Whiteouts) == 0 && len(s.Opaque) == 0 && len(s.Devices) == 0
}

type dirMeta struct {
	name  string
	mode  uint32
	uid   int
	gid   int
	mtime time.Time
}

// unpacker writes one layer's tar stream into a directory.
type unpacker struct {
	rootFd     int
	rootPath   string
	privileged bool
	log        *slog.Logger
	dirs       []dirMeta
	side       sidecar
	buf        []byte

	// portable resolves paths component by component with openat and
	// O_NOFOLLOW instead of openat2, and makes the layer durable with an
	// fsync per file and directory instead of syncfs (see resolve_*.go).
	// It is always set where openat2 does not exist.
	portable bool

	// cacheDir/cacheFd keep the parent directory of the last regular
	// file open for the next one (layers list files directory by
	// directory). Any entry other than a regular file, or one that
	// replaced a directory, drops it, since it could change what the
	// path resolves to.
	cacheDir string
	cacheFd  int

	euid, egid int

	// expanded is the sum of the sizes of the regular files written so
	// far, holes of sparse entries included; maxExpanded bounds it.
	expanded, maxExpanded int64

	// skipped holds the device nodes not created, for hard links to them.
	skipped map[string]bool
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheDir, u.cacheFd = "", -1
}

// unpackLayer extracts the tar stream r into dir, which must exist and be
// empty. It reads r to its end, so a caller hashing r sees every byte.
// portable selects the portable resolver (forced where openat2 does not
// exist); when it is set, the layer's files and directories are fsynced
// before unpackLayer returns, and the caller need not syncFS.
//
// maxExpanded (when positive) bounds the sum of the regular files' sizes as
// they land on disk. A sparse entry (GNU or PAX sparse) is far larger there
// than in the stream, whose own limit therefore does not bound it; an
// entry that would pass maxExpanded is refused before a byte of it is
// written.
func unpackLayer(ctx context.Context, dir string, r io.Reader, privileged, portable bool, maxExpanded int64, log *slog.Logger) (*sidecar, error) {
	portable = portable || !haveOpenat2
	rootFlags := dirPathFlag
	if portable {
		// A readable descriptor, which fsync accepts.
		rootFlags = unix.O_RDONLY
	}
	fd, err := unix.Open(dir, rootFlags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	u := &unpacker{rootFd: fd, rootPath: dir, privileged: privileged, portable: portable, log: log,
		buf: make([]byte, 256<<10), cacheFd: -1, euid: os.Geteuid(), egid: os.Getegid(), maxExpanded: maxExpanded}
	defer u.dropCache()
	tr := tar.NewReader(r)
	last := "(start of layer)"
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			// archive/tar's own verdict (GODEBUG tarinsecurepath=0);
			// entry gives the reason and names the entry.
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("read entry after %q: %w", last, err)
		}
		last = hdr.Name
		if err := u.entry(tr, hdr); err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// The tar end marker may be followed by padding; the diff id covers it.
	if _, err := io.CopyBuffer(io.Discard, r, u.buf); err != nil {
		return nil, fmt.Errorf("read after the last entry %q: %w", last, err)
	}
	if err := u.finishDirs(); err != nil {
		return nil, err
	}
	if u.portable {
		// Every file and directory was fsynced as it was finished; the
		// root's entries last, then one barrier that also flushes the
		// drive's cache where fsync does not (F_FULLFSYNC on macOS).
		if err := unix.Fsync(u.rootFd); err != nil {
			return nil, fmt.Errorf("sync layer: %w", err)
		}
		if err := fullSync(u.rootFd); err != nil {
			return nil, fmt.Errorf("sync layer: %w", err)
		}
	}
	return &u.side, nil
}

// cleanName validates a tar entry name and returns it relative to the
// layer root ("" for the root itself).
func cleanName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrUnsafeLayer)
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: path with a \"..\" component", ErrUnsafeLayer)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// errSymlinkComponent is what the portable resolver returns for a path
// that goes through a symlink, which it never follows.
var errSymlinkComponent = errors.New("path component is a symlink")

// openPortable opens p (relative to the layer root; "" or "." is the root)
// one component at a time: each directory with openat(O_DIRECTORY|
// O_NOFOLLOW) from the descriptor of the one before, starting at the
// layer root, and the last component with flags|O_NOFOLLOW. No symlink is
// ever followed, so the result is beneath the root by construction: a
// symlink in any component, including one whose target stays inside the
// layer, makes the open fail with errSymlinkComponent. ".." and empty
// components are refused outright (cleanName never lets them through).
func (u *unpacker) openPortable(p string, flags int) (int, error) {
	if p == "" || p == "." {
		return unix.Openat(u.rootFd, ".", flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	parts := strings.Split(p, "/")
	fd := u.rootFd
	for i, c := range parts {
		if c == "" || c == "." || c == ".." {
			if fd != u.rootFd {
				unix.Close(fd)
			}
			return -1, fmt.Errorf("%w: %q component", ErrUnsafeLayer, c)
		}
		fl := unix.O_RDONLY | unix.O_DIRECTORY
		if i == len(parts)-1 {
			fl = flags
		}
		nfd, err := unix.Openat(fd, c, fl|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			// O_NOFOLLOW on a symlink gives ELOOP, or ENOTDIR with
			// O_DIRECTORY (and EMLINK on some BSDs): say which.
			var st unix.Stat_t
			if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = errSymlinkComponent
			}
		}
		if fd != u.rootFd {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// openDir opens the directory dir (relative to the layer root) without
// leaving the layer (openBeneath), creating missing directories when
// create is set.
func (u *unpacker) openDir(dir string, create bool) (int, error) {
	if dir == "" {
		dir = "."
	}
	fd, err := u.openBeneath(dir, dirPathFlag|unix.O_DIRECTORY)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) || !create {
		return -1, u.resolveErr(dir, err)
	}
	parts := strings.Split(dir, "/")
	parent := "."
	for i, p := range parts {
		cur := strings.Join(parts[:i+1], "/")
		fd, err := u.openBeneath(cur, dirPathFlag|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			parent = cur
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, u.resolveErr(cur, err)
		}
		pfd, err := u.openBeneath(parent, dirPathFlag|unix.O_DIRECTORY)
		if err != nil {
			return -1, u.resolveErr(parent, err)
		}
		err = unix.Mkdirat(pfd, p, 0o755)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("create directory %s: %w", cur, err)
		}
		u.dirs = append(u.dirs, dirMeta{name: cur, mode: 0o755, mtime: time.Unix(0, 0)})
		parent = cur
	}
	fd, err = u.openBeneath(dir, dirPathFlag|unix.O_DIRECTORY)
	if err != nil {
		return -1, u.resolveErr(dir, err)
	}
	return fd, nil
}

func (u *unpacker) resolveErr(p string, err error) error {
	switch {
	case errors.Is(err, ErrUnsafeLayer):
		return fmt.Errorf("%s: %w", p, err)
	case errors.Is(err, errSymlinkComponent):
		return fmt.Errorf("%w: %s goes through a symlink, which this system's resolver never follows", ErrUnsafeLayer, p)
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: %s resolves outside the layer (through a symlink)", ErrUnsafeLayer, p)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeLayer, p)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("openat2 is not available (Linux 5.6 or later is required): %w", err)
	}
	return fmt.Errorf("open %s: %w", p, err)
}

// clear removes whatever exists at base in dirfd, unless it is a directory
// and keepDir is set, as a later tar entry replaces an earlier one.
func clear(dirfd int, base string, keepDir bool) (isDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		return false, unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
	}
	return false, unix.Unlinkat(dirfd, base, 0)
}

func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the layer root is not a directory", ErrUnsafeLayer)
		}
		u.dirs = append(u.dirs, dirMeta{name: ".", mode: uint32(hdr.Mode) & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime})
		return nil
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")

	if base == opaqueMarker {
		u.dropCache()
		return u.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		u.dropCache()
		return u.whiteout(dir, strings.TrimPrefix(base, whiteoutPrefix))
	}

	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
		return u.regular(tr, hdr, name, dir, base)
	}
	u.dropCache()
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return u.other(hdr, name, base, pfd)
}

// owner records a non-root owner when unprivileged and returns the mode
// to apply.
func (u *unpacker) owner(hdr *tar.Header, name string) uint32 {
	if u.side.Owners == nil {
		u.side.Owners = map[string][2]int{}
	}
	if !u.privileged && (hdr.Uid != 0 || hdr.Gid != 0) {
		u.side.Owners[name] = [2]int{hdr.Uid, hdr.Gid}
	}
	mode := uint32(hdr.Mode) & 0o7777
	if !u.privileged {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	return mode
}

// regular creates a regular file.
func (u *unpacker) regular(tr *tar.Reader, hdr *tar.Header, name, dir, base string) error {
	// hdr.Size is the size on disk, which for a sparse entry can be far
	// more than what the stream holds: count it before writing.
	if hdr.Size < 0 || (u.maxExpanded > 0 && hdr.Size > u.maxExpanded-u.expanded) {
		what := "the layer's files"
		if isSparse(hdr) {
			what = "the layer's files (this sparse entry's holes included)"
		}
		return fmt.Errorf("%w: %s would take %d bytes on disk, over the limit of %d bytes", ErrLayerTooLarge, what, u.expanded+hdr.Size, u.maxExpanded)
	}
	u.expanded += hdr.Size
	if u.cacheFd < 0 || u.cacheDir != dir {
		u.dropCache()
		pfd, err := u.openDir(dir, true)
		if err != nil {
			return err
		}
		u.cacheDir, u.cacheFd = dir, pfd
	}
	pfd := u.cacheFd
	mode := u.owner(hdr, name)
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		// A later entry replaces an earlier one (an empty directory too).
		if _, err := clear(pfd, base, false); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		fd, err = unix.Openat(pfd, base, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, tr, u.buf); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	if err := u.setXattrsFd(fd, hdr); err != nil {
		return err
	}
	// A new file belongs to our fsuid and fsgid already (directories get
	// no setgid bit before finishDirs).
	if u.privileged && (hdr.Uid != u.euid || hdr.Gid != u.egid) {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := setTimesFd(fd, hdr.ModTime); err != nil {
		return err
	}
	if u.portable {
		if err := unix.Fsync(fd); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// isSparse tells whether archive/tar expands hdr's data from a sparse map
// (old GNU 'S' entries, and GNU sparse entries in PAX records).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// other creates every entry but a regular file, in the directory pfd.
func (u *unpacker) other(hdr *tar.Header, name, base string, pfd int) error {
	mode := u.owner(hdr, name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		isDir, err := clear(pfd, base, true)
		if err != nil {
			return fmt.Errorf("replace %s: %w", name, err)
		}
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
				return fmt.Errorf("create directory: %w", err)
			}
		}
		if err := u.setXattrsAt(pfd, base, hdr); err != nil {
			return err
		}
		u.dirs = append(u.dirs, dirMeta{name: name, mode: mode, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime})
		return nil

	case tar.TypeSymlink:
		if _, err := clear(pfd, base, false); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create symlink: %w", err)
		}
		if u.privileged {
			if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown symlink: %w", err)
			}
		}
		return setTimesAt(pfd, base, hdr.ModTime)

	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		if target == "" {
			return fmt.Errorf("%w: hard link to the layer root", ErrUnsafeLayer)
		}
		if u.skipped[target] {
			// A link to a device node that was not created.
			if _, err := clear(pfd, base, false); err != nil {
				return fmt.Errorf("replace: %w", err)
			}
			u.side.Devices = append(u.side.Devices, name)
			u.skipped[name] = true
			return nil
		}
		tdir, tbase := path.Split(target)
		tfd, err := u.openDir(strings.TrimSuffix(tdir, "/"), false)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tfd)
		var st unix.Stat_t
		if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("hard link to %q: target is not in this layer: %w", hdr.Linkname, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("%w: hard link to directory %q", ErrUnsafeLayer, hdr.Linkname)
		}
		if target == name {
			return nil
		}
		if _, err := clear(pfd, base, false); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		// Flags 0: a link to a symlink links the symlink, never its target.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		return nil

	case tar.TypeChar, tar.TypeBlock:
		// Never created, privileged or not: a device node in a layer
		// would give whoever reaches it (the sandbox's payload, or a
		// host user through the store) the device itself, a host disk
		// or /dev/mem. A runtime gives each sandbox its own /dev. The
		// node is recorded in the sidecar ("devices"), and anything
		// there before it is removed as the entry replaces it.
		if _, err := clear(pfd, base, false); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		u.side.Devices = append(u.side.Devices, name)
		if u.skipped == nil {
			u.skipped = map[string]bool{}
		}
		u.skipped[name] = true
		u.log.Debug("device node in a layer not created", "entry", name, "major", hdr.Devmajor, "minor", hdr.Devminor)
		return nil

	case tar.TypeFifo:
		return u.mknod(pfd, name, base, unix.S_IFIFO|mode, 0, hdr)
	}
	return fmt.Errorf("%w: unsupported entry type %q", ErrUnsafeLayer, hdr.Typeflag)
}

func (u *unpacker) mknod(pfd int, name, base string, mode uint32, dev int, hdr *tar.Header) error {
	if _, err := clear(pfd, base, false); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if err := mknodAt(u.rootPath, pfd, name, base, mode, dev); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if u.privileged {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	// mknod applies the umask; set the mode exactly. The node was just
	// created by us in a directory resolved beneath the root, so
	// fchmodat cannot follow anything.
	if err := unix.Fchmodat(pfd, base, mode&0o7777, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}

// whiteout hides name of the lower layers.
func (u *unpacker) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafeLayer, name)
	}
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if _, err := clear(pfd, name, false); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if u.privileged && linuxDevices {
		if err := mknodAt(u.rootPath, pfd, path.Join(dir, name), name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create whiteout: %w", err)
		}
		return nil
	}
	u.side.Whiteouts = append(u.side.Whiteouts, path.Join(dir, name))
	fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o000)
	if err != nil {
		return fmt.Errorf("create whiteout: %w", err)
	}
	err = unix.Fsetxattr(fd, "user.overlay.whiteout", []byte{}, 0)
	unix.Close(fd)
	if err != nil {
		u.log.Debug("whiteout xattr not set; recorded in the sidecar only", "path", path.Join(dir, name), "err", err)
		return nil
	}
	// overlayfs looks for xattr whiteouts only in directories marked "x"
	// (an opaque "y" directory hides the lower layers anyway).
	return u.markDir(dir, "user.overlay.opaque", "x", true)
}

// opaque hides the lower layers' content of dir.
func (u *unpacker) opaque(dir string) error {
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	unix.Close(pfd)
	if u.privileged && linuxDevices {
		return u.markDir(dir, "trusted.overlay.opaque", "y", false)
	}
	u.side.Opaque = append(u.side.Opaque, dir)
	return u.markDir(dir, "user.overlay.opaque", "y", false)
}

// markDir sets an overlay xattr on dir; weak marks do not replace a "y".
func (u *unpacker) markDir(dir, attr, value string, weak bool) error {
	if dir == "" {
		dir = "."
	}
	fd, err := u.openBeneath(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return u.resolveErr(dir, err)
	}
	defer unix.Close(fd)
	if weak {
		b := make([]byte, 8)
		if n, err := unix.Fgetxattr(fd, attr, b); err == nil && string(b[:n]) == "y" {
			return nil
		}
	}
	if err := unix.Fsetxattr(fd, attr, []byte(value), 0); err != nil {
		if attr == "trusted.overlay.opaque" {
			return fmt.Errorf("set %s on %s: %w", attr, dir, err)
		}
		u.log.Debug("overlay xattr not set; recorded in the sidecar only", "dir", dir, "attr", attr, "err", err)
	}
	return nil
}

// xattrs returns the entry's extended attributes that may be applied:
// never the overlay namespaces (a layer must not forge whiteouts), and
// only user.* when unprivileged.
func (u *unpacker) xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		a, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if strings.HasPrefix(a, "trusted.overlay.") || strings.HasPrefix(a, "user.overlay.") {
			continue
		}
		if !u.privileged && !strings.HasPrefix(a, "user.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[a] = v
	}
	return out
}

func (u *unpacker) setXattrsFd(fd int, hdr *tar.Header) error {
	for a, v := range u.xattrs(hdr) {
		if err := unix.Fsetxattr(fd, a, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				u.log.Debug("xattr not kept", "entry", hdr.Name, "attr", a, "err", err)
				continue
			}
			return fmt.Errorf("set xattr %s: %w", a, err)
		}
	}
	return nil
}

func (u *unpacker) setXattrsAt(pfd int, base string, hdr *tar.Header) error {
	xs := u.xattrs(hdr)
	if len(xs) == 0 {
		return nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open for xattrs: %w", err)
	}
	defer unix.Close(fd)
	return u.setXattrsFd(fd, hdr)
}

// finishDirs applies directory modes, owners and times last, deepest
// first, so that creating entries neither fails on read-only directories
// nor bumps their mtimes.
func (u *unpacker) finishDirs() error {
	sort.SliceStable(u.dirs, func(i, j int) bool {
		return strings.Count(u.dirs[i].name, "/") > strings.Count(u.dirs[j].name, "/")
	})
	seen := map[string]bool{}
	for i := len(u.dirs) - 1; i >= 0; i-- {
		// The last entry for a directory wins.
		d := u.dirs[i]
		if seen[d.name] {
			u.dirs[i].name = ""
		}
		seen[d.name] = true
	}
	for _, d := range u.dirs {
		if d.name == "" {
			continue
		}
		fd, err := u.openBeneath(d.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			// Replaced by a later non-directory entry.
			continue
		}
		err = u.finishDir(fd, d)
		if err == nil && u.portable {
			if err = unix.Fsync(fd); err != nil {
				err = fmt.Errorf("sync: %w", err)
			}
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.name, err)
		}
	}
	return nil
}

func (u *unpacker) finishDir(fd int, d dirMeta) error {
	if u.privileged {
		if err := unix.Fchown(fd, d.uid, d.gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	} else if d.mode&0o700 != 0o700 {
		// Keep the layer removable and readable by its owner.
		d.mode |= 0o700
	}
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return setTimesFd(fd, d.mtime)
}

func timespecs(t time.Time) []unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	return []unix.Timespec{ts, ts}
}

func setTimesAt(dirfd int, base string, t time.Time) error {
	if err := unix.UtimesNanoAt(dirfd, base, timespecs(t), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
