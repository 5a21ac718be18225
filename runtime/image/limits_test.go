package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestTooManyLayers: a manifest of 5,000 layers is refused at pull, before
// any layer is fetched, with the limit and the fix named.
func TestTooManyLayers(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		layer := layerOf(t, tarBytes(t, []tentry{fileE("f", "one layer\n", 0o644)}))
		ref := reg.pushRepeated(t, "layers", layer, 5000)
		reg.resetCounts()
		root := t.TempDir()
		s := openStore(t, root)
		_, err := s.Pull(context.Background(), ref)
		if !errors.Is(err, ErrTooManyLayers) {
			t.Fatalf("pull: %v, want ErrTooManyLayers", err)
		}
		for _, want := range []string{"5000 layers", fmt.Sprint(MaxLayers), "rebuild the image"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		d, _ := layer.Digest()
		if n := reg.count(d.String()); n != 0 {
			t.Errorf("layer fetched %d times before the refusal", n)
		}
		if m, _ := filepath.Glob(filepath.Join(root, "blobs", "sha256", "*")); len(m) != 0 {
			t.Errorf("stored for a refused image: %v", m)
		}
		// At the limit is fine.
		if got, err := s.Pull(context.Background(), reg.pushRepeated(t, "atlimit", layer, MaxLayers)); err != nil || len(got.LayerDirs) != MaxLayers {
			t.Fatalf("pull of %d layers: %v", MaxLayers, err)
		}
	})
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }

// pushRepeated pushes an image whose manifest lists layer n times, built
// by hand: building it with mutate is quadratic in n.
func (r *testRegistry) pushRepeated(t testing.TB, repo string, layer v1.Layer, n int) string {
	t.Helper()
	one := imageOf(t, v1.Config{}, layer)
	ref := r.push(t, repo, one)
	m, err := one.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := one.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, cf = m.DeepCopy(), cf.DeepCopy()
	for len(m.Layers) < n {
		m.Layers = append(m.Layers, m.Layers[0])
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, cf.RootFS.DiffIDs[0])
	}
	rawCfg, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(tag.Context(), static.NewLayer(rawCfg, types.OCIConfigJSON)); err != nil {
		t.Fatal(err)
	}
	m.Config.Digest, m.Config.Size = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(rawCfg))}, int64(len(rawCfg))
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest(raw)); err != nil {
		t.Fatal(err)
	}
	return ref
}

// rawHeader builds one tar header block by hand, for the formats
// archive/tar does not write (GNU sparse). fill sets extra fields.
func rawHeader(name string, typ byte, size int64, gnu bool, fill func(b []byte)) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", 0o644))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	b[156] = typ
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:265], "ustar\x0000")
	}
	if fill != nil {
		fill(b)
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n = len(fmt.Sprint(n)) + len(rec)
	}
	return fmt.Sprint(n) + rec
}

// sparseTar returns a layer with one sparse file "name" of realSize bytes
// whose only data is "hello" at offset at, in the old GNU format (type
// 'S', map in the header) or the PAX 1.0 format (map before the data).
func sparseTar(name string, realSize, at int64, pax bool) []byte {
	data := []byte("hello")
	var out []byte
	if pax {
		recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
			paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(realSize))
		out = append(out, rawHeader("PaxHeaders/"+name, 'x', int64(len(recs)), false, nil)...)
		out = append(out, padBlock([]byte(recs))...)
		sparseMap := padBlock(fmt.Appendf(nil, "1\n%d\n%d\n", at, len(data)))
		out = append(out, rawHeader("GNUSparseFile.0/"+name, '0', int64(len(sparseMap)+len(data)), false, nil)...)
		out = append(out, sparseMap...)
	} else {
		out = append(out, rawHeader(name, 'S', int64(len(data)), true, func(b []byte) {
			copy(b[386:398], fmt.Sprintf("%011o\x00", at))
			copy(b[398:410], fmt.Sprintf("%011o\x00", len(data)))
			copy(b[483:495], fmt.Sprintf("%011o\x00", realSize))
		})...)
	}
	out = append(out, padBlock(data)...)
	return append(out, make([]byte, 1024)...)
}

// TestSparseEntries pulls layers with sparse files in both GNU formats
// from a registry: a small one is unpacked with its holes as zeros, and one
// that expands to 1.2 GiB, far past the limit although its stream is a few
// KiB, is refused before anything is written.
func TestSparseEntries(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		for _, pax := range []bool{false, true} {
			format := "gnu"
			if pax {
				format = "pax"
			}
			t.Run(format, func(t *testing.T) {
				const small, at = 1 << 20, 300_000
				ref := reg.push(t, "small-"+format, imageOf(t, v1.Config{}, layerOf(t, sparseTar("holes", small, at, pax))))
				img, err := openStore(t, t.TempDir()).Pull(context.Background(), ref)
				if err != nil {
					t.Fatalf("pull a small sparse file: %v", err)
				}
				b, err := os.ReadFile(filepath.Join(img.LayerDirs[0], "holes"))
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, small)
				copy(want[at:], "hello")
				if !bytes.Equal(b, want) {
					t.Errorf("sparse file: %d bytes, want %d with hello at %d", len(b), len(want), at)
				}

				const big = 1288490189 // 1.2 GiB
				ref = reg.push(t, "big-"+format, imageOf(t, v1.Config{}, layerOf(t, sparseTar("bomb", big, big-5, pax))))
				root := t.TempDir()
				_, err = openStore(t, root).Pull(context.Background(), ref)
				if !errors.Is(err, ErrLayerTooLarge) || !strings.Contains(err.Error(), `entry "bomb"`) || !strings.Contains(err.Error(), "sparse") {
					t.Fatalf("pull of a 1.2 GiB sparse file: %v, want ErrLayerTooLarge naming the entry", err)
				}
				t.Logf("refused: %v", err)
				if l := leftovers(t, root); len(l) != 0 {
					t.Errorf("left behind: %v", l)
				}
			})
		}
	})
}
