// Package benchimage builds the image that the image store's benchmarks
// pull: five layers of about 40 MiB each, half incompressible (random
// bytes in a few large and many small files) and half compressible (text),
// about 200 MiB unpacked. The same seed always yields the same image.
package benchimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
)

// Layers is the number of layers of the image.
const Layers = 5

// Build returns the benchmark image and its unpacked size in bytes.
func Build() (v1.Image, int64, error) {
	var layers []v1.Layer
	var total int64
	for i := range Layers {
		tb, n, err := layerTar(i)
		if err != nil {
			return nil, 0, err
		}
		total += n
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		if err != nil {
			return nil, 0, err
		}
		if _, err := zw.Write(tb); err != nil {
			return nil, 0, err
		}
		if err := zw.Close(); err != nil {
			return nil, 0, err
		}
		b := gz.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return nil, 0, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, 0, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cf)
	return img, total, err
}

var words = []string{"sandbox", "layer", "image", "registry", "overlay", "digest", "manifest", "config", "the", "a", "of", "and", "to", "in"}

func layerTar(i int) ([]byte, int64, error) {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var total int64
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(name string, body []byte) error {
		total += int64(len(body))
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	dir := fmt.Sprintf("layer%d/", i)
	if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
		return nil, 0, err
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for j := 0; j+8 <= n; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		return b
	}
	// 16 MiB incompressible in two large files.
	for j := range 2 {
		if err := add(fmt.Sprintf("%sbig%d.bin", dir, j), random(8<<20)); err != nil {
			return nil, 0, err
		}
	}
	// 4 MiB incompressible in 1000 small files.
	for j := range 1000 {
		if err := add(fmt.Sprintf("%ssmall/%03d/%d.bin", dir, j/100, j), random(4<<10)); err != nil {
			return nil, 0, err
		}
	}
	// 20 MiB of text in 100 files.
	for j := range 100 {
		var t bytes.Buffer
		for t.Len() < 200<<10 {
			for range 12 {
				t.WriteString(words[r.IntN(len(words))])
				t.WriteByte(' ')
			}
			t.WriteByte('\n')
		}
		if err := add(fmt.Sprintf("%stext/%d.txt", dir, j), t.Bytes()); err != nil {
			return nil, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), total, nil
}
