package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// PullOption configures one Pull.
type PullOption func(*pullOptions)

type pullOptions struct {
	progress Progress
}

// WithProgress sends the pull's per-layer progress to p (see NewProgress
// for a renderer).
func WithProgress(p Progress) PullOption {
	return func(o *pullOptions) {
		if p != nil {
			o.progress = p
		}
	}
}

// MaxLayers is the most layers an image may have. Each layer is one
// overlayfs lower directory, and overlayfs stacks at most 500 of them,
// fewer where the mount options must fit one page; Docker refuses more
// than 128 layers, and so does sbx, at pull rather than at up.
const MaxLayers = 128

// ErrTooManyLayers is wrapped by the error that refuses an image with more
// than MaxLayers layers.
var ErrTooManyLayers = errors.New("too many layers")

func checkLayerCount(n int) error {
	if n > MaxLayers {
		return fmt.Errorf("%w: the image has %d layers and sbx runs at most %d (overlayfs stacks a limited number of lower directories; Docker has the same limit): rebuild the image with fewer layers, e.g. a multi-stage build that copies the result into one stage, or docker build --squash", ErrTooManyLayers, n, MaxLayers)
	}
	return nil
}

// maxConfigSize bounds manifests and configs read into memory.
const maxConfigSize = 32 << 20

// Pull fetches an image into the store, unless it is there already, and
// returns it as Lookup would. For a registry reference it asks the
// registry for the reference's current manifest (one request when nothing
// changed). A dir: reference is only checked.
func (s *Store) Pull(ctx context.Context, ref string, opts ...PullOption) (*Image, error) {
	po := pullOptions{progress: nopProgress{}}
	for _, o := range opts {
		o(&po)
	}
	src, err := parseSource(ref, s.o.insecure)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if src.kind == kindDir {
		img, err := src.dirImage()
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
		return img, nil
	}
	img, err := s.pull(ctx, src, po.progress)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.key, err)
	}
	return img, nil
}

// layerJob is one layer to make present.
type layerJob struct {
	ref    string
	index  int
	layers int
	blob   string // compressed digest; "" when no blob is kept
	size   int64
	diffID string
	limit  int64
	open   func(ctx context.Context) (io.ReadCloser, error)
	local  bool // read from this machine (oci-layout, docker-archive)
}

func (s *Store) pull(ctx context.Context, src *source, prog Progress) (*Image, error) {
	gc, err := lockFile(ctx, filepath.Join(s.root, "locks", "gc.lock"), true)
	if err != nil {
		return nil, err
	}
	defer gc.unlock()

	o, err := s.open(ctx, src)
	if err != nil {
		return nil, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	if r := s.completeRecord(idx, src.key, o.manifestDigest); r != nil {
		for i, l := range r.Layers {
			prog.Update(LayerProgress{Ref: src.key, Index: i, Layers: len(r.Layers), Digest: layerName(l), Total: l.Size, Done: l.Size, State: StateCached, Local: src.kind != kindRegistry})
		}
		return s.commit(ctx, src.key, r)
	}

	rec, jobs, err := s.prepare(ctx, src, o)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		prog.Update(LayerProgress{Ref: j.ref, Index: j.index, Layers: j.layers, Digest: j.name(), Total: j.size, State: StateWaiting, Local: j.local})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.o.jobs)
	for _, j := range jobs {
		g.Go(func() error {
			if err := s.ensureLayer(gctx, j, prog); err != nil {
				return fmt.Errorf("layer %d/%d %s: %w", j.index+1, j.layers, j.name(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s.commit(ctx, src.key, rec)
}

// completeRecord returns a stored record with the given manifest digest
// whose blobs and layers are all present, preferring the one under key.
func (s *Store) completeRecord(idx *indexFile, key, digest string) *record {
	if r, ok := idx.Images[key]; ok && r.Digest == digest && s.complete(r) {
		return r
	}
	for _, r := range idx.Images {
		if r.Digest == digest && s.complete(r) {
			c := *r
			c.Ref = key
			return &c
		}
	}
	return nil
}

func (s *Store) complete(r *record) bool {
	if !r.NoBlobs && (!exists(s.blobPath(r.Digest)) || !exists(s.blobPath(r.ConfigDigest))) {
		return false
	}
	for _, l := range r.Layers {
		if !exists(s.layerPath(l.DiffID)) {
			return false
		}
		if !r.NoBlobs && !exists(s.blobPath(l.Digest)) {
			return false
		}
	}
	return true
}

// commit records r under key as pulled and used now.
func (s *Store) commit(ctx context.Context, key string, r *record) (*Image, error) {
	now := time.Now().UTC()
	rec := *r
	rec.Ref = key
	if rec.Pulled.IsZero() {
		rec.Pulled = now
	}
	rec.LastUsed = now
	if err := s.updateIndex(ctx, func(idx *indexFile) error {
		idx.Images[key] = &rec
		return nil
	}); err != nil {
		return nil, err
	}
	return s.image(&rec)
}

func layerName(l layerRecord) string {
	if l.Digest != "" {
		return l.Digest
	}
	return l.DiffID
}

func (j *layerJob) name() string {
	if j.blob != "" {
		return j.blob
	}
	return j.diffID
}

// prepare stores the manifest and config and lists the layers to fetch.
func (s *Store) prepare(ctx context.Context, src *source, o *opened) (*record, []*layerJob, error) {
	if o.rawManifest == nil {
		return s.prepareArchive(src, o)
	}
	m, err := v1.ParseManifest(bytes.NewReader(o.rawManifest))
	if err != nil {
		return nil, nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := checkLayerCount(len(m.Layers)); err != nil {
		return nil, nil, err
	}
	if err := s.putBlob(ctx, o.manifestDigest, o.rawManifest); err != nil {
		return nil, nil, fmt.Errorf("store manifest: %w", err)
	}
	rawCfg, err := s.ensureSmallBlob(ctx, m.Config.Digest.String(), func(ctx context.Context) (io.ReadCloser, error) {
		return o.blob(ctx, m.Config.Digest)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("fetch config %s: %w", m.Config.Digest, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, nil, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, fmt.Errorf("manifest has %d layers, config %d diff ids", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	rec := &record{Digest: o.manifestDigest, Platform: cfg.Platform(), ConfigDigest: m.Config.Digest.String(), Config: cfg.Config}
	var jobs []*layerJob
	for i, l := range m.Layers {
		if !l.MediaType.IsLayer() {
			return nil, nil, fmt.Errorf("layer %d: media type %q is not a layer", i+1, l.MediaType)
		}
		rec.Layers = append(rec.Layers, layerRecord{Digest: l.Digest.String(), DiffID: cfg.RootFS.DiffIDs[i].String(), Size: l.Size, MediaType: string(l.MediaType)})
		h, size := l.Digest, l.Size
		open := func(ctx context.Context) (io.ReadCloser, error) { return o.blob(ctx, h) }
		if o.blobAt != nil {
			open = func(ctx context.Context) (io.ReadCloser, error) {
				r := &resumingReader{
					ctx:    ctx,
					open:   func(ctx context.Context, off int64) (io.ReadCloser, error) { return o.blobAt(ctx, h, off, size) },
					blob:   h.String(),
					origin: o.origin,
					size:   size,
					idle:   s.o.idle,
					log:    s.o.logger.Info,
				}
				if err := r.start(); err != nil {
					return nil, err
				}
				return r, nil
			}
		}
		jobs = append(jobs, &layerJob{
			ref: src.key, index: i, layers: len(m.Layers),
			blob: l.Digest.String(), size: l.Size, diffID: cfg.RootFS.DiffIDs[i].String(),
			limit: s.o.maxUnpack(l.Size),
			open:  open,
			local: src.kind != kindRegistry,
		})
	}
	return rec, jobs, nil
}

func (s *Store) prepareArchive(src *source, o *opened) (*record, []*layerJob, error) {
	cfg, err := o.img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	layers, err := o.img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("read layers: %w", err)
	}
	if err := checkLayerCount(len(layers)); err != nil {
		return nil, nil, err
	}
	// The archive's own size bounds what its layers may decompress to.
	var archiveSize int64
	if st, err := os.Stat(src.path); err == nil {
		archiveSize = st.Size()
	}
	rec := &record{Digest: o.manifestDigest, Platform: cfg.Platform(), ConfigDigest: o.manifestDigest, Config: cfg.Config, NoBlobs: true}
	var jobs []*layerJob
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		rec.Layers = append(rec.Layers, layerRecord{DiffID: d.String()})
		jobs = append(jobs, &layerJob{
			ref: src.key, index: i, layers: len(layers), diffID: d.String(),
			limit: s.o.maxUnpack(archiveSize),
			open:  func(context.Context) (io.ReadCloser, error) { return l.Uncompressed() },
			local: true,
		})
	}
	return rec, jobs, nil
}

// ensureLayer makes the layer's blob and unpacked directory present. The
// same layer is fetched once in this process (singleflight) and once
// across processes (flock per blob and per layer).
func (s *Store) ensureLayer(ctx context.Context, j *layerJob, prog Progress) error {
	report := func(st LayerState, done int64) {
		prog.Update(LayerProgress{Ref: j.ref, Index: j.index, Layers: j.layers, Digest: j.name(), Total: j.size, Done: done, State: st, Local: j.local})
	}
	for {
		_, shared, err := s.flight.do(ctx, j.blob+"/"+j.diffID, func() (any, error) {
			return nil, s.fetchLayer(ctx, j, report)
		})
		if err == nil {
			if shared {
				report(StateDone, j.size)
			}
			return nil
		}
		// Another caller's cancellation is not ours: try again.
		if shared && errors.Is(err, context.Canceled) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (s *Store) fetchLayer(ctx context.Context, j *layerJob, report func(LayerState, int64)) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		// A read interrupted by cancellation reports a closed body.
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}()
	if j.blob != "" {
		bl, err := lockFile(ctx, s.lockPath("blob", j.blob), false)
		if err != nil {
			return err
		}
		defer bl.unlock()
	}
	ll, err := lockFile(ctx, s.lockPath("layer", j.diffID), false)
	if err != nil {
		return err
	}
	defer ll.unlock()

	blobPath, layerPath := "", s.layerPath(j.diffID)
	haveBlob := j.blob == ""
	if !haveBlob {
		blobPath = s.blobPath(j.blob)
		haveBlob = exists(blobPath)
	}
	haveLayer := exists(layerPath)
	if haveBlob && haveLayer {
		report(StateCached, j.size)
		return nil
	}

	state := StateDownloading
	var rc io.ReadCloser
	if j.blob != "" && haveBlob {
		state = StateUnpacking
		rc, err = openNoFollow(blobPath)
	} else {
		if j.blob == "" {
			state = StateUnpacking
		}
		rc, err = j.open(ctx)
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	// A registry's body may be tied to another context: closing it is
	// what interrupts a read in flight.
	defer context.AfterFunc(ctx, func() { rc.Close() })()
	report(state, 0)
	var r io.Reader = &progressReader{r: rc, report: func(n int64) { report(state, n) }}

	// The blob streams into tmp/ while it is hashed.
	var (
		tmp *os.File
		bw  *bufio.Writer
		bh  hash.Hash
	)
	if !haveBlob {
		tmp, err = os.CreateTemp(filepath.Join(s.root, "tmp"), hexOf(j.blob)+"-*.partial")
		if err != nil {
			return fmt.Errorf("create temp blob: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		bh = sha256.New()
		bw = bufio.NewWriterSize(tmp, 1<<20)
		r = io.TeeReader(r, io.MultiWriter(bw, bh))
	}

	// Meanwhile the layer is unpacked from the same stream.
	var (
		tmpDir string
		side   *sidecar
	)
	if !haveLayer {
		tmpDir, err = os.MkdirTemp(filepath.Join(s.root, "layers"), "tmp-"+hexOf(j.diffID)+"-")
		if err != nil {
			return fmt.Errorf("create temp layer directory: %w", err)
		}
		defer func() {
			if tmpDir != "" {
				removeTree(tmpDir)
			}
		}()
		if err := os.Chmod(tmpDir, 0o755); err != nil {
			return fmt.Errorf("create temp layer directory: %w", err)
		}
		side, err = s.unpackStream(ctx, tmpDir, r, j)
		if err != nil {
			return err
		}
	}

	if tmp != nil {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		if got := "sha256:" + hex.EncodeToString(bh.Sum(nil)); got != j.blob {
			return fmt.Errorf("download: digest mismatch: got %s", got)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write blob: %w", err)
		}
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("write blob: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("write blob: %w", err)
		}
		if err := os.Rename(tmp.Name(), blobPath); err != nil {
			return fmt.Errorf("store blob: %w", err)
		}
		tmp = nil
		if err := syncDir(filepath.Dir(blobPath)); err != nil {
			return fmt.Errorf("store blob: %w", err)
		}
	}
	if tmpDir != "" {
		if side != nil && !side.empty() {
			b, err := json.Marshal(side)
			if err != nil {
				return fmt.Errorf("store layer record: %w", err)
			}
			if err := writeFileAtomic(layerPath+".json", b); err != nil {
				return fmt.Errorf("store layer record: %w", err)
			}
		}
		// The layer's files must be on disk before its name is: a crash
		// must never leave a complete-looking layer with empty files. The
		// portable unpacker (always used where there is no openat2 and
		// syncfs) fsynced every file and directory it wrote already.
		if !s.o.portable {
			if err := syncFS(tmpDir); err != nil {
				return fmt.Errorf("store layer: %w", err)
			}
		}
		if err := os.Rename(tmpDir, layerPath); err != nil {
			os.Remove(layerPath + ".json")
			return fmt.Errorf("store layer: %w", err)
		}
		tmpDir = ""
		if err := syncDir(filepath.Dir(layerPath)); err != nil {
			return fmt.Errorf("store layer: %w", err)
		}
	}
	report(StateDone, j.size)
	return nil
}

// unpackStream decompresses r (gzip, zstd or plain tar), unpacks it into
// dir, and checks the diff id and the size limit.
func (s *Store) unpackStream(ctx context.Context, dir string, r io.Reader, j *layerJob) (*sidecar, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	var (
		dr    io.Reader = br
		close           = func() {}
	)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		dr, close = gz, func() { gz.Close() }
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		dr, close = zr, zr.Close
	}
	defer close()
	dh := sha256.New()
	lr := &limitReader{r: io.TeeReader(dr, dh), left: j.limit, limit: j.limit}
	side, err := unpackLayer(ctx, dir, lr, !s.o.unprivileged, s.o.portable, j.limit, s.o.logger)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(dh.Sum(nil)); got != j.diffID {
		return nil, fmt.Errorf("unpack: diff id mismatch: got %s", got)
	}
	// Let the caller's drain read the compressed stream's remainder.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return side, nil
}

// limitReader fails once more than limit bytes were read.
type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells "exactly at the limit" from "over it".
		var b [1]byte
		if n, _ := l.r.Read(b[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("%w (%d bytes)", ErrLayerTooLarge, l.limit)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// progressReader reports the bytes read every 512 KiB, or more often (at
// most every 100 ms) when they come slowly.
type progressReader struct {
	r        io.Reader
	n, last  int64
	lastTime time.Time
	report   func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n == p.last {
		return n, err
	}
	if p.n-p.last >= 512<<10 || err == io.EOF {
		p.last = p.n
		p.report(p.n)
		return n, err
	}
	if now := time.Now(); now.Sub(p.lastTime) >= 100*time.Millisecond {
		p.last, p.lastTime = p.n, now
		p.report(p.n)
	}
	return n, err
}

// putBlob stores data as the blob digest, after checking the digest.
func (s *Store) putBlob(ctx context.Context, digest string, data []byte) error {
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != digest {
		return fmt.Errorf("blob %s: digest mismatch: got %s", digest, got)
	}
	p := s.blobPath(digest)
	if exists(p) {
		return nil
	}
	l, err := lockFile(ctx, s.lockPath("blob", digest), false)
	if err != nil {
		return err
	}
	defer l.unlock()
	if exists(p) {
		return nil
	}
	return s.writeBlob(p, data)
}

func (s *Store) writeBlob(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), filepath.Base(p)+"-*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// ensureSmallBlob returns a small blob (a config), fetching it once.
func (s *Store) ensureSmallBlob(ctx context.Context, digest string, open func(context.Context) (io.ReadCloser, error)) ([]byte, error) {
	p := s.blobPath(digest)
	if b, err := readNoFollow(p); err == nil {
		return b, nil
	}
	v, _, err := s.flight.do(ctx, "small/"+digest, func() (any, error) {
		l, err := lockFile(ctx, s.lockPath("blob", digest), false)
		if err != nil {
			return nil, err
		}
		defer l.unlock()
		if b, err := readNoFollow(p); err == nil {
			return b, nil
		}
		rc, err := open(ctx)
		if err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
		if err != nil {
			return nil, fmt.Errorf("download: %w", err)
		}
		if len(b) > maxConfigSize {
			return nil, fmt.Errorf("larger than %d bytes", maxConfigSize)
		}
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); got != digest {
			return nil, fmt.Errorf("digest mismatch: got %s", got)
		}
		if err := s.writeBlob(p, b); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}
