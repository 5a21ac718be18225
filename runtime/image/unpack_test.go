package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestUnpackReplaces: later entries replace earlier ones, as tar does,
// with either resolver.
func TestUnpackReplaces(t *testing.T) {
	forEachResolver(t, func(t *testing.T, portable bool) {
		testUnpackReplaces(t, portable)
	})
}

func testUnpackReplaces(t *testing.T, portable bool) {
	dir := t.TempDir()
	tb := tarBytes(t, []tentry{
		fileE("f", "first\n", 0o644),
		fileE("f", "second\n", 0o600),
		dirE("d/", 0o755),
		fileE("d", "now a file\n", 0o644),
		symlinkE("s", "f"),
		fileE("s", "not a link\n", 0o644),
		fileE("l", "x\n", 0o644),
		symlinkE("l", "f"),
		fileE("deep/er/file", "parents made on the way\n", 0o644),
	})
	if _, err := unpackLayer(context.Background(), dir, bytes.NewReader(tb), isRoot, portable, 0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"f":            fileDesc(0o600, "second\n"),
		"d":            fileDesc(0o644, "now a file\n"),
		"s":            fileDesc(0o644, "not a link\n"),
		"l":            "symlink f",
		"deep":         "dir -rwxr-xr-x",
		"deep/er":      "dir -rwxr-xr-x",
		"deep/er/file": fileDesc(0o644, "parents made on the way\n"),
	}
	diffTrees(t, "layer", treeOf(t, dir, false), want)
}

// TestUnpackLimit: the decompressed-size limit counts every byte.
func TestUnpackLimit(t *testing.T) {
	tb := tarBytes(t, []tentry{fileE("big", string(make([]byte, 100_000)), 0o644)})
	lr := &limitReader{r: bytes.NewReader(tb), left: 50_000, limit: 50_000}
	_, err := unpackLayer(context.Background(), t.TempDir(), lr, false, false, 0, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("err = %v, want ErrLayerTooLarge", err)
	}
	// Exactly at the limit is fine.
	lr = &limitReader{r: bytes.NewReader(tb), left: int64(len(tb)), limit: int64(len(tb))}
	if _, err := unpackLayer(context.Background(), t.TempDir(), lr, false, false, 0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

// TestLayerCompressions: gzip, zstd and uncompressed layers all unpack.
func TestLayerCompressions(t *testing.T) {
	reg := registries(t)[0]
	mk := func(n string) []byte { return tarBytes(t, []tentry{fileE(n, n+"\n", 0o644)}) }
	zst, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(mk("zstd"))), nil },
		tarball.WithCompression(compression.ZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(mk("plain"), types.OCIUncompressedLayer)
	gz := layerOf(t, mk("gzip"))
	ref := reg.push(t, "comp", imageOf(t, v1.Config{}, gz, zst, plain))
	img, err := openStore(t, t.TempDir()).Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []string{"gzip", "zstd", "plain"} {
		want := map[string]string{n: fileDesc(0o644, n+"\n")}
		diffTrees(t, n, treeOf(t, img.LayerDirs[i], false), want)
	}
}
