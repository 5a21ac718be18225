package image

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
)

// withPortableResolver makes a store unpack with the portable resolver and
// per-file fsyncs that systems without openat2 and syncfs use, so that
// tests on Linux exercise that path too.
func withPortableResolver() Option {
	return func(o *options) error {
		o.portable = true
		return nil
	}
}

// forEachResolver runs f with the openat2 resolver, where there is one,
// and with the portable one.
func forEachResolver(t *testing.T, f func(t *testing.T, portable bool)) {
	if haveOpenat2 {
		t.Run("openat2", func(t *testing.T) { f(t, false) })
	}
	t.Run("portable", func(t *testing.T) { f(t, true) })
}

// TestPullPortable: an image pulled with the portable resolver unpacks to
// the same layers as with openat2, privileged or not.
func TestPullPortable(t *testing.T) {
	reg := registries(t)[0]
	ref := reg.push(t, "busybox", testImage(t))
	for _, unprivileged := range []bool{false, true} {
		privileged := isRoot && !unprivileged
		opts := []Option{withPortableResolver()}
		if unprivileged {
			opts = append(opts, WithUnprivileged())
		}
		img, err := openStore(t, t.TempDir(), opts...).Pull(context.Background(), ref)
		if err != nil {
			t.Fatalf("unprivileged %v: %v", unprivileged, err)
		}
		if len(img.LayerDirs) != 2 {
			t.Fatalf("LayerDirs = %v", img.LayerDirs)
		}
		diffTrees(t, "base layer", treeOf(t, img.LayerDirs[0], privileged), fixDirMode(wantBase(t, privileged)))
		diffTrees(t, "top layer", treeOf(t, img.LayerDirs[1], privileged), fixDirMode(wantTop(privileged)))
	}
}

// TestPortableRefusesInnerSymlinks: the portable resolver follows no
// symlink at all, so an entry written through a symlink that stays inside
// the layer is refused too, where openat2 RESOLVE_BENEATH follows it.
func TestPortableRefusesInnerSymlinks(t *testing.T) {
	tb := tarBytes(t, []tentry{
		dirE("usr/", 0o755),
		dirE("usr/lib/", 0o755),
		symlinkE("lib", "usr/lib"),
		fileE("lib/x", "through an inner symlink\n", 0o644),
	})
	forEachResolver(t, func(t *testing.T, portable bool) {
		dir := t.TempDir()
		_, err := unpackLayer(context.Background(), dir, bytes.NewReader(tb), isRoot, portable, 0, slog.New(slog.DiscardHandler))
		if !portable {
			if err != nil {
				t.Fatalf("openat2: %v", err)
			}
			if got := treeOf(t, dir, false)["usr/lib/x"]; got != fileDesc(0o644, "through an inner symlink\n") {
				t.Errorf("usr/lib/x = %q", got)
			}
			return
		}
		if !errors.Is(err, ErrUnsafeLayer) {
			t.Fatalf("err = %v, want ErrUnsafeLayer", err)
		}
		t.Logf("refused: %v", err)
	})
}
