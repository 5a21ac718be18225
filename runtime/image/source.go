package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-dev/sbx/lang/imageref"
)

type sourceKind int

const (
	kindRegistry sourceKind = iota
	kindOCILayout
	kindDockerArchive
	kindDir
)

// The prefixes are defined once, in lang/imageref, for the Sandboxfile and the store alike.
const (
	prefixOCILayout     = imageref.PrefixOCILayout
	prefixDockerArchive = imageref.PrefixDockerArchive
	prefixDir           = imageref.PrefixDir
)

// source is a parsed image reference.
type source struct {
	kind   sourceKind
	key    string // canonical reference, the key in images.json
	ref    name.Reference
	path   string
	tag    string
	digest string
}

// parseSource parses an image reference (see the package documentation).
func parseSource(s string, insecure map[string]bool) (*source, error) {
	switch {
	case strings.HasPrefix(s, prefixDir):
		p, err := absPath(strings.TrimPrefix(s, prefixDir))
		if err != nil {
			return nil, err
		}
		return &source{kind: kindDir, key: prefixDir + p, path: p}, nil

	case strings.HasPrefix(s, prefixOCILayout):
		rest := strings.TrimPrefix(s, prefixOCILayout)
		src := &source{kind: kindOCILayout}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if _, err := v1.NewHash(rest[i+1:]); err != nil {
				return nil, fmt.Errorf("oci-layout digest %q: %w", rest[i+1:], err)
			}
			rest, src.digest = rest[:i], rest[i+1:]
		} else if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") {
			rest, src.tag = rest[:i], rest[i+1:]
		}
		p, err := absPath(rest)
		if err != nil {
			return nil, err
		}
		src.path = p
		src.key = prefixOCILayout + p
		switch {
		case src.digest != "":
			src.key += "@" + src.digest
		case src.tag != "":
			src.key += ":" + src.tag
		}
		return src, nil

	case strings.HasPrefix(s, prefixDockerArchive):
		rest := strings.TrimPrefix(s, prefixDockerArchive)
		src := &source{kind: kindDockerArchive}
		if _, err := os.Stat(rest); err != nil {
			// docker-archive:FILE:REPO:TAG names one image of several.
			if i := strings.Index(rest, ":"); i > 0 {
				rest, src.tag = rest[:i], rest[i+1:]
			}
		}
		p, err := absPath(rest)
		if err != nil {
			return nil, err
		}
		src.path = p
		src.key = prefixDockerArchive + p
		if src.tag != "" {
			src.key += ":" + src.tag
		}
		return src, nil
	}

	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("parse image reference: %w", err)
	}
	if insecure[ref.Context().RegistryStr()] {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return nil, fmt.Errorf("parse image reference: %w", err)
		}
	}
	return &source{kind: kindRegistry, key: ref.Name(), ref: ref}, nil
}

func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	return filepath.Abs(p)
}

func (src *source) dirImage() (*Image, error) {
	st, err := os.Stat(src.path)
	if err != nil {
		return nil, fmt.Errorf("root filesystem %s: %w", src.path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("root filesystem %s: not a directory", src.path)
	}
	return &Image{Ref: src.key, RootDir: src.path}, nil
}

// opened is a source resolved to one image, ready to fetch.
type opened struct {
	img            v1.Image
	manifestDigest string
	rawManifest    []byte // nil for docker-archive
	// blob opens a blob (config or compressed layer) by digest.
	blob func(ctx context.Context, h v1.Hash) (io.ReadCloser, error)
	// blobAt, for a registry, opens a blob of size bytes from byte off
	// on, so that a download that broke off can be resumed; origin names
	// the registry.
	blobAt func(ctx context.Context, h v1.Hash, off, size int64) (io.ReadCloser, error)
	origin string
}

func (s *Store) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(s.o.keychain),
		remote.WithTransport(s.o.transport),
		remote.WithPlatform(s.o.platform),
	}
}

// open resolves src to one image, for the store's platform.
func (s *Store) open(ctx context.Context, src *source) (*opened, error) {
	switch src.kind {
	case kindRegistry:
		desc, err := remote.Get(src.ref, s.remoteOptions(ctx)...)
		if err != nil {
			return nil, registryHint(src.ref, err)
		}
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		o, err := openedImage(img, func(_ context.Context, h v1.Hash) (io.ReadCloser, error) {
			l, err := img.LayerByDigest(h)
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		})
		if err != nil {
			return nil, err
		}
		o.blobAt, o.origin = s.registryBlobs(src.ref), src.ref.Context().RegistryStr()
		return o, nil

	case kindOCILayout:
		lp, err := layout.FromPath(src.path)
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: %w", src.path, err)
		}
		img, err := s.layoutImage(lp, src)
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: %w", src.path, err)
		}
		return openedImage(img, func(_ context.Context, h v1.Hash) (io.ReadCloser, error) {
			return lp.Blob(h)
		})

	case kindDockerArchive:
		var tag *name.Tag
		if src.tag != "" {
			t, err := name.NewTag(src.tag)
			if err != nil {
				return nil, fmt.Errorf("docker archive %s: %w", src.path, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(src.path, tag)
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", src.path, err)
		}
		// An archive has no registry manifest; its identity is the
		// image ID, and computing a manifest would mean compressing
		// every layer.
		id, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", src.path, err)
		}
		return &opened{img: img, manifestDigest: id.String()}, nil
	}
	return nil, fmt.Errorf("%s: cannot be pulled", src.key)
}

// registryHint adds what to do next to a registry's refusal.
func registryHint(ref name.Reference, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("fetch manifest: %w", err)
	}
	reg := ref.Context().RegistryStr()
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("fetch manifest: %w: log in with \"docker login %s\" (sbx reads Docker's credentials)", err, reg)
	case http.StatusNotFound:
		return fmt.Errorf("fetch manifest: %w: check the image name and tag", err)
	}
	return fmt.Errorf("fetch manifest: %w", err)
}

func openedImage(img v1.Image, blob func(context.Context, v1.Hash) (io.ReadCloser, error)) (*opened, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of the manifest: %w", err)
	}
	return &opened{img: img, manifestDigest: d.String(), rawManifest: raw, blob: blob}, nil
}

// layoutImage picks the image a layout reference names: by digest, by the
// org.opencontainers.image.ref.name annotation, or the only one.
func (s *Store) layoutImage(lp layout.Path, src *source) (v1.Image, error) {
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	var pick func(v1.ImageIndex, bool) (v1.Image, error)
	pick = func(ii v1.ImageIndex, top bool) (v1.Image, error) {
		im, err := ii.IndexManifest()
		if err != nil {
			return nil, err
		}
		var cands []v1.Descriptor
		for _, d := range im.Manifests {
			switch {
			case top && src.digest != "":
				if d.Digest.String() == src.digest {
					cands = append(cands, d)
				}
			case top && src.tag != "":
				if d.Annotations["org.opencontainers.image.ref.name"] == src.tag ||
					strings.HasSuffix(d.Annotations["io.containerd.image.name"], ":"+src.tag) {
					cands = append(cands, d)
				}
			case d.MediaType.IsIndex() || d.Platform == nil || d.Platform.Satisfies(s.o.platform):
				cands = append(cands, d)
			}
		}
		if !top && len(cands) > 1 {
			// Prefer an exact platform match over descriptors without one.
			var exact []v1.Descriptor
			for _, d := range cands {
				if d.Platform != nil {
					exact = append(exact, d)
				}
			}
			if len(exact) > 0 {
				cands = exact
			}
		}
		switch {
		case len(cands) == 0:
			what := "an image"
			switch {
			case top && src.digest != "":
				what = "an image with digest " + src.digest
			case top && src.tag != "":
				what = "an image tagged " + src.tag
			}
			return nil, fmt.Errorf("%s for %s is not in the layout: list its index.json for what is there", what, s.o.platform.String())
		case len(cands) > 1:
			return nil, fmt.Errorf("%d images match: name one with :TAG or @DIGEST", len(cands))
		}
		d := cands[0]
		if d.MediaType.IsIndex() {
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			return pick(child, false)
		}
		return ii.Image(d.Digest)
	}
	return pick(idx, true)
}

// Resolve asks the image's source for its current manifest digest, for
// the store's platform; for a registry that means network access. A dir:
// reference has no digest and yields "".
func (s *Store) Resolve(ctx context.Context, ref string) (string, error) {
	src, err := parseSource(ref, s.o.insecure)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	if src.kind == kindDir {
		if _, err := src.dirImage(); err != nil {
			return "", fmt.Errorf("resolve %s: %w", ref, err)
		}
		return "", nil
	}
	o, err := s.open(ctx, src)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", src.key, err)
	}
	return o.manifestDigest, nil
}
