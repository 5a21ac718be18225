package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned (wrapped) by Lookup and Digest when an image is
// not in the store.
var ErrNotFound = errors.New("image not in the store")

// Store is an image store rooted at one directory. Its methods are safe for
// concurrent use, also by several processes sharing the directory.
type Store struct {
	root   string
	o      options
	flight flightGroup
}

// Image is a stored image as the runtime consumes it.
type Image struct {
	// Ref is the canonical reference: "index.docker.io/library/alpine:3.20",
	// "oci-layout:/abs/path:tag", "docker-archive:/abs/file.tar", "dir:/abs".
	Ref string
	// Digest is the manifest digest ("sha256:…") of the platform's image;
	// for docker-archive sources the image ID; empty for dir sources.
	Digest string
	// Platform is the platform the image was resolved for; nil for dir.
	Platform *v1.Platform
	// Config holds Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts…
	Config v1.Config
	// LayerDirs are the unpacked layers, bottom to top, ready to be
	// overlayfs lowerdirs (which list the top first: reverse them).
	LayerDirs []string
	// RootDir is the root filesystem of a dir: source, used in place;
	// empty otherwise.
	RootDir string
}

// Entry describes one stored image for listing.
type Entry struct {
	Ref      string    `json:"ref"`
	Digest   string    `json:"digest"`
	Platform string    `json:"platform,omitempty"`
	Size     int64     `json:"size"` // compressed, as pulled
	Pulled   time.Time `json:"pulled"`
	LastUsed time.Time `json:"last_used"`
}

// record is one image in images.json.
type record struct {
	Ref          string        `json:"ref"`
	Digest       string        `json:"digest"`
	Platform     *v1.Platform  `json:"platform,omitempty"`
	ConfigDigest string        `json:"config_digest"`
	Config       v1.Config     `json:"config"`
	Layers       []layerRecord `json:"layers"`
	Pulled       time.Time     `json:"pulled"`
	LastUsed     time.Time     `json:"last_used"`
	// NoBlobs is set for docker-archive images, whose manifest and layers
	// are not kept as blobs.
	NoBlobs bool `json:"no_blobs,omitempty"`
}

type layerRecord struct {
	Digest    string `json:"digest,omitempty"`
	DiffID    string `json:"diff_id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
}

func (r *record) size() int64 {
	var n int64
	for _, l := range r.Layers {
		n += l.Size
	}
	return n
}

type indexFile struct {
	Version int                `json:"version"`
	Images  map[string]*record `json:"images"`
}

const indexVersion = 1

// Open opens (creating it if needed) the image store rooted at root.
func Open(root string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	if os.Geteuid() != 0 {
		o.unprivileged = true
	}
	o.transport = &idleTransport{base: o.transport, idle: o.idle}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	}
	if err := prepareRoot(abs); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	}
	return &Store{root: abs, o: o}, nil
}

// storeDirs are the store's own directories, parents first.
var storeDirs = []string{"blobs", "blobs/sha256", "layers", "layers/sha256", "locks", "tmp"}

// prepareRoot creates the store's directories, or checks and repairs
// them: each is a directory (never a symlink below the root, which may be
// one), belongs to the caller and is 0700. Layers keep their setuid files
// and their modes, so the store's directories are what keeps other users
// away from them: no other user can reach a path beneath the root.
func prepareRoot(abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return fmt.Errorf("create parent directory: %w", err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := privateDir(abs, true); err != nil {
		return err
	}
	for _, d := range storeDirs {
		p := filepath.Join(abs, d)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory: %w", err)
		}
		if err := privateDir(p, false); err != nil {
			return err
		}
	}
	return nil
}

// privateDir checks that p is a directory of the caller's, following a
// symlink only when follow is set, and makes it 0700.
func privateDir(p string, follow bool) error {
	var st unix.Stat_t
	stat := unix.Lstat
	if follow {
		stat = unix.Stat
	}
	if err := stat(p, &st); err != nil {
		return fmt.Errorf("check %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory (sbx follows no symlink inside its image store): remove it and run sbx again", p)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s belongs to uid %d, not to uid %d running sbx, and what sbx unpacks there would be that user's to reach: set SBX_HOME to a directory of uid %d's own", p, st.Uid, uid, uid)
	}
	if st.Mode&0o7777 != 0o700 {
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("make %s private: %w", p, err)
		}
	}
	return nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) blobPath(digest string) string {
	return filepath.Join(s.root, "blobs", "sha256", hexOf(digest))
}

func (s *Store) layerPath(diffID string) string {
	return filepath.Join(s.root, "layers", "sha256", hexOf(diffID))
}

func (s *Store) lockPath(kind, digest string) string {
	return filepath.Join(s.root, "locks", kind+"-"+hexOf(digest)+".lock")
}

func hexOf(digest string) string {
	if h, err := v1.NewHash(digest); err == nil {
		return h.Hex
	}
	return digest
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// readIndex reads images.json; a missing file is an empty index. Readers
// need no lock: the file is only ever replaced by rename.
func (s *Store) readIndex() (*indexFile, error) {
	idx := &indexFile{Version: indexVersion, Images: map[string]*record{}}
	b, err := readNoFollow(filepath.Join(s.root, "images.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("read image index %s: %w", filepath.Join(s.root, "images.json"), err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("read image index: version %d, this sbx knows %d: upgrade sbx", idx.Version, indexVersion)
	}
	if idx.Images == nil {
		idx.Images = map[string]*record{}
	}
	return idx, nil
}

// updateIndex applies fn to images.json under the index lock and writes
// the result atomically.
func (s *Store) updateIndex(ctx context.Context, fn func(*indexFile) error) error {
	l, err := lockFile(ctx, filepath.Join(s.root, "locks", "images.lock"), false)
	if err != nil {
		return err
	}
	defer l.unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.root, "images.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path via a temp file in the same
// directory, fsync and rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// openNoFollow opens a file of the store for reading, refusing a symlink
// (sbx follows none inside its store).
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
}

// readNoFollow reads a file of the store, refusing a symlink.
func readNoFollow(p string) ([]byte, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// List returns the stored images, sorted by reference.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Entry, 0, len(idx.Images))
	for _, r := range idx.Images {
		e := Entry{Ref: r.Ref, Digest: r.Digest, Size: r.size(), Pulled: r.Pulled, LastUsed: r.LastUsed}
		if r.Platform != nil {
			e.Platform = r.Platform.String()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// Lookup returns a stored image without network access, and records its
// use. A dir: reference needs no pull. An image that is not stored yields
// an error wrapping ErrNotFound.
func (s *Store) Lookup(ctx context.Context, ref string) (*Image, error) {
	src, err := parseSource(ref, s.o.insecure)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ref, err)
	}
	if src.kind == kindDir {
		return src.dirImage()
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ref, err)
	}
	r, ok := idx.Images[src.key]
	if !ok {
		return nil, fmt.Errorf("look up %s: %w: run sbx pull", src.key, ErrNotFound)
	}
	img, err := s.image(r)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", src.key, err)
	}
	now := time.Now().UTC()
	err = s.updateIndex(ctx, func(idx *indexFile) error {
		if r, ok := idx.Images[src.key]; ok {
			r.LastUsed = now
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", src.key, err)
	}
	return img, nil
}

// image builds the runtime's view of a record, checking its layers exist.
func (s *Store) image(r *record) (*Image, error) {
	img := &Image{Ref: r.Ref, Digest: r.Digest, Platform: r.Platform, Config: r.Config}
	for _, l := range r.Layers {
		dir := s.layerPath(l.DiffID)
		if !exists(dir) {
			return nil, fmt.Errorf("layer %s is missing: %w: run sbx pull", l.DiffID, ErrNotFound)
		}
		img.LayerDirs = append(img.LayerDirs, dir)
	}
	return img, nil
}

// Digest returns the manifest digest of a stored image, without network
// access (see Resolve for the registry's current answer). A dir: reference
// has no digest and yields "".
func (s *Store) Digest(ctx context.Context, ref string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	src, err := parseSource(ref, s.o.insecure)
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	if src.kind == kindDir {
		return "", nil
	}
	idx, err := s.readIndex()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	r, ok := idx.Images[src.key]
	if !ok {
		return "", fmt.Errorf("digest of %s: %w: run sbx pull", src.key, ErrNotFound)
	}
	return r.Digest, nil
}
