package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sbx-dev/sbx/runtime/sbxinit"
)

// cpCmd copies files and directories between the host and a running sandbox, or between two
// sandboxes, as tar streams through the sandboxes' inits: it works the same on every driver.
type cpCmd struct {
	Archive bool   `short:"a" help:"Keep the owners (uid and gid) of what is copied. By default copies are owned by root in a sandbox and by you on the host."`
	Src     string `arg:"" help:"What to copy: a host path, SANDBOX:PATH, or - for a tar stream on stdin."`
	Dst     string `arg:"" help:"Where to: a host path or SANDBOX:PATH (an existing directory receives SRC under its name; otherwise the copy is named DST), or - for a tar stream on stdout."`
}

// cpLoc is one side of a copy: a host path, or a path in a sandbox.
type cpLoc struct {
	sandbox string // "" for the host
	path    string
}

func (l cpLoc) String() string {
	if l.sandbox == "" {
		return l.path
	}
	return l.sandbox + ":" + l.path
}

// sandboxArg is a sandbox name before a colon: "web:/etc" is in sandbox web, "./a:b" and
// "/x:y" are host paths.
var sandboxArg = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_-]*):(.*)$`)

func parseCpLoc(arg string) cpLoc {
	if m := sandboxArg.FindStringSubmatch(arg); m != nil {
		return cpLoc{sandbox: m[1], path: m[2]}
	}
	return cpLoc{path: arg}
}

func (c *cpCmd) Run(a *app) error {
	src, dst := parseCpLoc(c.Src), parseCpLoc(c.Dst)
	if src.sandbox == "" && dst.sandbox == "" {
		return fmt.Errorf("neither %s nor %s names a sandbox: write SANDBOX:PATH on one side (sbx cp web:/etc/app.conf .)", c.Src, c.Dst)
	}
	if src.path == "" || dst.path == "" {
		return errors.New("an empty path: write SANDBOX:/PATH (sbx cp ./file web:/tmp)")
	}
	ctx, cancel := signalContext()
	defer cancel()
	cp := &copier{a: a, archive: c.Archive}
	defer cp.close()
	var err error
	if src, err = cp.resolve(ctx, src); err != nil {
		return err
	}
	if dst, err = cp.resolve(ctx, dst); err != nil {
		return err
	}
	if src.sandbox != "" && (src.path == "/" || path.Base(src.path) == "..") {
		return fmt.Errorf("%s: copy a directory below / by its name", src)
	}
	// "-": a tar stream on stdin or stdout, as docker cp has it.
	switch {
	case src.sandbox == "" && src.path == "-":
		return cp.tarIn(ctx, dst)
	case dst.sandbox == "" && dst.path == "-":
		return cp.tarOut(ctx, src)
	}
	if src.sandbox == "" {
		fi, err := os.Lstat(src.path)
		if err != nil {
			return fmt.Errorf("%s: %w", src, errors.Unwrap(err))
		}
		cp.srcDir = fi.IsDir()
	}
	if dst.sandbox == "" {
		return cp.toHost(ctx, src, dst)
	}
	return cp.toSandbox(ctx, src, dst)
}

// tarIn extracts a tar stream from stdin into the sandbox directory dst, as it is (owners
// too: the stream says what it wants).
func (cp *copier) tarIn(ctx context.Context, dst cpLoc) error {
	c, err := cp.dial(ctx, dst.sandbox)
	if err != nil {
		return err
	}
	err = c.CopyTo(ctx, strings.TrimSuffix(dst.path, "/")+"/", os.Stdin)
	var re *sbxinit.RemoteError
	if errors.As(err, &re) {
		if strings.HasSuffix(re.Msg, "no such file or directory") || strings.HasSuffix(re.Msg, ": not a directory") {
			return fmt.Errorf("%s is not a directory in sandbox %s: a tar stream is extracted into one; create it with 'sbx exec %s -- mkdir -p %s'", dst, dst.sandbox, dst.sandbox, dst.path)
		}
		return cpRemoteError(dst, re)
	}
	return err
}

// tarOut writes the sandbox path src to stdout as a tar stream named from its base name.
func (cp *copier) tarOut(ctx context.Context, src cpLoc) error {
	c, err := cp.dial(ctx, src.sandbox)
	if err != nil {
		return err
	}
	err = c.CopyFrom(ctx, strings.TrimSuffix(src.path, "/"), cp.a.stdout)
	var re *sbxinit.RemoteError
	if errors.As(err, &re) {
		return cpRemoteError(src, re)
	}
	return err
}

// copier holds the connections of one copy.
type copier struct {
	a       *app
	archive bool
	srcDir  bool // a host source is a directory
	clients []*sbxinit.Client
}

func (cp *copier) close() {
	for _, c := range cp.clients {
		c.Close()
	}
}

// resolve makes a sandbox path absolute (relative to the sandbox's working directory) after
// checking that the sandbox runs.
func (cp *copier) resolve(ctx context.Context, l cpLoc) (cpLoc, error) {
	if l.sandbox == "" {
		return l, nil
	}
	c, rs, err := cp.a.dialSandbox(ctx, l.sandbox)
	if err != nil {
		return l, err
	}
	c.Close()
	if !path.IsAbs(l.path) {
		wd := rs.Process.Workdir
		if wd == "" {
			wd = "/"
		}
		trail := strings.HasSuffix(l.path, "/")
		l.path = path.Join(wd, l.path)
		if trail && l.path != "/" {
			l.path += "/"
		}
	}
	return l, nil
}

// dial opens a connection of its own to a sandbox's init (a copy between two sandboxes, or
// within one, reads and writes at once).
func (cp *copier) dial(ctx context.Context, name string) (*sbxinit.Client, error) {
	c, _, err := cp.a.dialSandbox(ctx, name)
	if err != nil {
		return nil, err
	}
	cp.clients = append(cp.clients, c)
	return c, nil
}

// source opens a tar stream of src whose top entry is named top.
func (cp *copier) source(ctx context.Context, src cpLoc, top string) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	if src.sandbox == "" {
		go func() {
			pw.CloseWithError(sbxinit.WriteTar(pw, src.path, top, func(h *tar.Header) {
				if !cp.archive { // owners are root's inside unless -a
					h.Uid, h.Gid = 0, 0
				}
			}))
		}()
		return pr, nil
	}
	c, err := cp.dial(ctx, src.sandbox)
	if err != nil {
		return nil, err
	}
	raw, rw := io.Pipe()
	go func() {
		err := c.CopyFrom(ctx, strings.TrimSuffix(src.path, "/"), rw)
		var re *sbxinit.RemoteError
		if errors.As(err, &re) {
			err = cpRemoteError(src, re)
		}
		rw.CloseWithError(err)
	}()
	go func() {
		err := renameTar(pw, raw, top, func(h *tar.Header) {
			if !cp.archive {
				h.Uid, h.Gid = 0, 0
			}
		})
		raw.CloseWithError(err)
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// cpRemoteError words the init's error about a sandbox path.
func cpRemoteError(l cpLoc, re *sbxinit.RemoteError) error {
	msg := re.Msg
	for _, op := range []string{"copy from ", "copy to "} {
		if rest, ok := strings.CutPrefix(msg, op); ok {
			msg = rest
		}
	}
	return fmt.Errorf("%s: %s in sandbox %s", l, strings.TrimPrefix(msg, strings.TrimSuffix(l.path, "/")+": "), l.sandbox)
}

// toSandbox copies src into the sandbox path dst: into it when it is a directory, else as
// it (replacing a file).
func (cp *copier) toSandbox(ctx context.Context, src, dst cpLoc) error {
	c, err := cp.dial(ctx, dst.sandbox)
	if err != nil {
		return err
	}
	srcBase := path.Base(strings.TrimSuffix(filepath.ToSlash(src.path), "/"))
	dir := strings.TrimSuffix(dst.path, "/")
	if dir == "" {
		dir = "/"
	}
	err = cp.copyTo(ctx, c, src, dir, srcBase)
	var re *sbxinit.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	missing := strings.HasSuffix(re.Msg, "no such file or directory")
	isFile := strings.HasSuffix(re.Msg, ": not a directory")
	switch {
	case strings.HasSuffix(dst.path, "/") && (missing || isFile):
		return fmt.Errorf("%s is not a directory in sandbox %s: create it with 'sbx exec %s -- mkdir -p %s', or drop the trailing / to name the copy", dst, dst.sandbox, dst.sandbox, dir)
	case isFile && cp.srcDir:
		return fmt.Errorf("%s is a file: a directory cannot replace it; copy into its directory instead", dst)
	case !missing && !isFile:
		return cpRemoteError(dst, re)
	}
	parent := path.Dir(dir)
	err = cp.copyTo(ctx, c, src, parent, path.Base(dir))
	if errors.As(err, &re) {
		if strings.HasSuffix(re.Msg, "no such file or directory") || strings.HasSuffix(re.Msg, ": not a directory") {
			return fmt.Errorf("%s: %s does not exist in sandbox %s: create it with 'sbx exec %s -- mkdir -p %s'", dst, parent, dst.sandbox, dst.sandbox, parent)
		}
		return cpRemoteError(dst, re)
	}
	return err
}

// copyTo extracts src, named top, into the sandbox directory dir. The source is opened only
// once the init accepted dir.
func (cp *copier) copyTo(ctx context.Context, c *sbxinit.Client, src cpLoc, dir, top string) error {
	lr := &lazyReader{open: func() (io.ReadCloser, error) { return cp.source(ctx, src, top) }}
	defer lr.Close()
	err := c.CopyTo(ctx, dir, lr)
	if lr.err != nil {
		return lr.err
	}
	return err
}

// lazyReader opens its reader on the first Read.
type lazyReader struct {
	open func() (io.ReadCloser, error)
	r    io.ReadCloser
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		if l.err == nil {
			l.r, l.err = l.open()
		}
		if l.err != nil {
			return 0, l.err
		}
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

func (l *lazyReader) Close() {
	if l.r != nil {
		l.r.Close()
	}
}

// toHost copies src (a sandbox path) to the host path dst: into it when it is a directory,
// else as it (replacing a file).
func (cp *copier) toHost(ctx context.Context, src, dst cpLoc) error {
	dir, top := dst.path, path.Base(strings.TrimSuffix(src.path, "/"))
	fi, err := os.Stat(dst.path)
	replace := err == nil && !fi.IsDir()
	switch {
	case err == nil && fi.IsDir():
	case strings.HasSuffix(dst.path, "/"):
		return fmt.Errorf("%s is not a directory: create it with 'mkdir -p %s', or drop the trailing / to name the copy", dst.path, dst.path)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		dir, top = filepath.Dir(dst.path), filepath.Base(dst.path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("%s does not exist: create it with 'mkdir -p %s'", dir, dir)
		}
	default:
		return fmt.Errorf("%s: %w", dst.path, err)
	}
	r, err := cp.source(ctx, src, top)
	if err != nil {
		return err
	}
	defer r.Close()
	return extractHostTar(r, dir, top, cp.archive, replace)
}

// renameTar copies the tar stream r to w with its top entry (the first path element of every
// entry) renamed top, fix applied to every header.
func renameTar(w io.Writer, r io.Reader, top string, fix func(*tar.Header)) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "./")
		first, rest, _ := strings.Cut(name, "/")
		if first == "" || first == ".." {
			return fmt.Errorf("copy: an entry %q outside the copied path", h.Name)
		}
		h.Name = top
		if rest != "" || strings.HasSuffix(name, "/") {
			h.Name += "/" + rest
		}
		fix(h)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// extractHostTar extracts a tar stream from a sandbox into the host directory dir. What a
// sandbox sends is not trusted: every entry must lie under top, no entry is written through
// a symlink (one the stream made or one already there), set-user-ID and set-group-ID bits
// are dropped, and owners are kept only with archive. replace says that top is an existing
// file the copy may replace, but not with a directory.
func extractHostTar(r io.Reader, dir, top string, archive, replace bool) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	type dirMeta struct {
		name string
		h    *tar.Header
	}
	var dirs []dirMeta
	tr := tar.NewReader(r)
	first := true
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if name != top && !strings.HasPrefix(name, top+"/") {
			return fmt.Errorf("copy: the sandbox sent %q, outside %s", h.Name, top)
		}
		if first && replace && h.Typeflag == tar.TypeDir {
			return fmt.Errorf("%s is a file: a directory cannot replace it; copy into its directory instead", filepath.Join(dir, top))
		}
		first = false
		if err := checkParents(root, name); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm // no set-id bits
		old, lerr := root.Lstat(name)
		switch h.Typeflag {
		case tar.TypeDir:
			if lerr == nil && !old.IsDir() {
				if err := root.Remove(name); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
				lerr = fs.ErrNotExist
			}
			if lerr != nil {
				if err := root.Mkdir(name, 0o700); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
			}
			dirs = append(dirs, dirMeta{name, h})
		case tar.TypeReg:
			if lerr == nil && old.IsDir() {
				return fmt.Errorf("copy %s: a directory is in the way", filepath.Join(dir, name))
			}
			if lerr == nil && old.Mode()&fs.ModeSymlink != 0 {
				if err := root.Remove(name); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
			if archive {
				if err := root.Lchown(name, h.Uid, h.Gid); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
			}
			if err := root.Chmod(name, mode); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
			_ = root.Chtimes(name, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			if lerr == nil {
				if old.IsDir() {
					return fmt.Errorf("copy %s: a directory is in the way", filepath.Join(dir, name))
				}
				if err := root.Remove(name); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
			if archive {
				_ = root.Lchown(name, h.Uid, h.Gid)
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		mode := fs.FileMode(d.h.Mode) & fs.ModePerm
		if d.h.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		if archive {
			_ = root.Lchown(d.name, d.h.Uid, d.h.Gid)
		}
		if err := root.Chmod(d.name, mode); err != nil {
			return fmt.Errorf("copy %s: %w", d.name, err)
		}
		_ = root.Chtimes(d.name, d.h.ModTime, d.h.ModTime)
	}
	return nil
}

// checkParents checks that every directory above name is a real directory, not a symlink, so
// that nothing is written through a link.
func checkParents(root *os.Root, name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (a symlink or a file): nothing is copied through it", p)
		}
	}
	return nil
}
