package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestHostileLayers pulls each fixture of testdata/image/hostile (made by
// its gen.go) as a one-layer image and checks that the layer is refused
// with an error naming the entry, that nothing escaped, and that nothing
// of it is left in the store.
// It runs once with each resolver: openat2 (where it exists) and the
// portable one that other systems use.
func TestHostileLayers(t *testing.T) {
	forEachResolver(t, testHostileLayers)
}

func testHostileLayers(t *testing.T, portable bool) {
	reg := registries(t)[0]
	tenTimes := WithMaxUnpackSize(func(c int64) int64 { return 10 * c })
	for _, c := range []struct {
		fixture string
		entry   string // named in the error
		escape  string // must not exist afterwards; relative to the store root unless absolute
		opts    []Option
		is      error
	}{
		{fixture: "dotdot.tar", entry: `"../sbx-hostile-dotdot"`, escape: "layers/sbx-hostile-dotdot", is: ErrUnsafeLayer},
		{fixture: "absolute.tar", entry: `"/tmp/sbx-hostile-absolute"`, escape: "/tmp/sbx-hostile-absolute", is: ErrUnsafeLayer},
		{fixture: "symlink-write.tar", entry: `"link/sbx-hostile-symlink"`, escape: "/tmp/sbx-hostile-symlink", is: ErrUnsafeLayer},
		{fixture: "symlink-absolute.tar", entry: `"abs/sbx-hostile-symlink-abs"`, escape: "/tmp/sbx-hostile-symlink-abs", is: ErrUnsafeLayer},
		{fixture: "hardlink-outside.tar", entry: `"passwd"`, is: ErrUnsafeLayer},
		{fixture: "hardlink-symlink.tar", entry: `"shadow"`, is: ErrUnsafeLayer},
		{fixture: "whiteout-dotdot.tar", entry: `"etc/.wh..."`, is: ErrUnsafeLayer},
		{fixture: "bomb.tar.gz", entry: `"bomb"`, opts: []Option{tenTimes}, is: ErrLayerTooLarge},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			layer, err := tarball.LayerFromFile(filepath.Join("..", "..", "testdata", "image", "hostile", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := layer.Digest()
			diffID, _ := layer.DiffID()
			ref := reg.push(t, "hostile", imageOf(t, v1.Config{}, layer))
			root := t.TempDir()
			opts := c.opts
			if portable {
				opts = append(opts[:len(opts):len(opts)], withPortableResolver())
			}
			s := openStore(t, root, opts...)
			_, err = s.Pull(context.Background(), ref)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), "entry "+c.entry) {
				t.Fatalf("pull error %q: want %v naming entry %s", err, c.is, c.entry)
			}
			t.Logf("refused: %v", err)
			if c.escape != "" {
				p := c.escape
				if !filepath.IsAbs(p) {
					p = filepath.Join(root, p)
				}
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s was created outside the layer", p)
				}
			}
			if l := leftovers(t, root); len(l) != 0 {
				t.Errorf("left behind: %v", l)
			}
			for _, p := range []string{s.blobPath(digest.String()), s.layerPath(diffID.String())} {
				if exists(p) {
					t.Errorf("%s is visible after the refusal", p)
				}
			}
		})
	}
}
