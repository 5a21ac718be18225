package image

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PruneOptions says what Prune must keep.
type PruneOptions struct {
	// Keep lists digests still in use by sandboxes (from their state):
	// manifest digests (their config and layers are kept too), blob
	// digests or layer diff ids.
	Keep []string
	// All also removes the images whose reference is not in InUse and
	// whose manifest digest is not in Keep.
	All bool
	// InUse lists the references that All must keep, in any form Pull
	// accepts.
	InUse []string
}

// Freed is what Prune removed.
type Freed struct {
	Images int   `json:"images"`
	Blobs  int   `json:"blobs"`
	Layers int   `json:"layers"`
	Bytes  int64 `json:"bytes"`
}

// Prune removes the blobs and layers that no stored image references and
// that opts.Keep does not name, plus leftovers of interrupted pulls; with
// opts.All it first forgets the images not in use. It waits for running
// pulls (of any process sharing the store) to finish.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (Freed, error) {
	var freed Freed
	gc, err := lockFile(ctx, filepath.Join(s.root, "locks", "gc.lock"), false)
	if err != nil {
		return freed, fmt.Errorf("prune: %w", err)
	}
	defer gc.unlock()

	keep := map[string]bool{}
	for _, d := range opts.Keep {
		keep[d] = true
	}
	inUse := map[string]bool{}
	for _, r := range opts.InUse {
		src, err := parseSource(r, s.o.insecure)
		if err != nil {
			return freed, fmt.Errorf("prune: in-use reference %s: %w", r, err)
		}
		inUse[src.key] = true
	}

	var records []*record
	err = s.updateIndex(ctx, func(idx *indexFile) error {
		for k, r := range idx.Images {
			if opts.All && !inUse[k] && !keep[r.Digest] {
				delete(idx.Images, k)
				freed.Images++
				continue
			}
			records = append(records, r)
		}
		return nil
	})
	if err != nil {
		return freed, fmt.Errorf("prune: %w", err)
	}

	// Everything reachable from the remaining images and from Keep.
	for _, r := range records {
		keep[r.Digest] = true
		keep[r.ConfigDigest] = true
		for _, l := range r.Layers {
			keep[l.Digest] = true
			keep[l.DiffID] = true
		}
	}
	for _, d := range opts.Keep {
		s.keepManifest(d, keep)
	}

	blobs := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil {
		return freed, fmt.Errorf("prune: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return freed, fmt.Errorf("prune: %w", err)
		}
		if keep["sha256:"+e.Name()] {
			continue
		}
		p := filepath.Join(blobs, e.Name())
		if st, err := os.Lstat(p); err == nil {
			freed.Bytes += st.Size()
		}
		if err := os.Remove(p); err != nil {
			return freed, fmt.Errorf("prune: remove blob: %w", err)
		}
		os.Remove(s.lockPath("blob", e.Name()))
		freed.Blobs++
	}

	layers := filepath.Join(s.root, "layers", "sha256")
	ents, err = os.ReadDir(layers)
	if err != nil {
		return freed, fmt.Errorf("prune: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return freed, fmt.Errorf("prune: %w", err)
		}
		name := e.Name()
		if strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			if strings.HasSuffix(name, ".json") && !exists(filepath.Join(layers, strings.TrimSuffix(name, ".json"))) {
				os.Remove(filepath.Join(layers, name))
			}
			continue
		}
		if keep["sha256:"+name] {
			continue
		}
		p := filepath.Join(layers, name)
		freed.Bytes += treeSize(p)
		if err := removeTree(p); err != nil {
			return freed, fmt.Errorf("prune: remove layer: %w", err)
		}
		os.Remove(p + ".json")
		os.Remove(s.lockPath("layer", name))
		freed.Layers++
	}

	// Leftovers of interrupted pulls: no pull runs while gc.lock is ours.
	for _, dir := range []string{filepath.Join(s.root, "tmp"), filepath.Join(s.root, "layers")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if dir == filepath.Join(s.root, "layers") && !strings.HasPrefix(n, "tmp-") {
				continue
			}
			p := filepath.Join(dir, n)
			freed.Bytes += treeSize(p)
			removeTree(p)
		}
	}
	return freed, nil
}

// keepManifest marks the config and layers of a stored manifest as kept.
func (s *Store) keepManifest(digest string, keep map[string]bool) {
	b, err := readNoFollow(s.blobPath(digest))
	if err != nil {
		return
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil || m.Config.Digest.Hex == "" {
		return
	}
	keep[m.Config.Digest.String()] = true
	for _, l := range m.Layers {
		keep[l.Digest.String()] = true
	}
	cb, err := readNoFollow(s.blobPath(m.Config.Digest.String()))
	if err != nil {
		return
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cb))
	if err != nil {
		return
	}
	for _, d := range cfg.RootFS.DiffIDs {
		keep[d.String()] = true
	}
}

// treeSize sums the sizes of the regular files under p, counting each
// hard-linked inode once.
func treeSize(p string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if ino, ok := inode(info); ok {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		n += info.Size()
		return nil
	})
	return n
}

// removeTree removes p, first making directories writable where an
// unprivileged unpack left read-only ones.
func removeTree(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
