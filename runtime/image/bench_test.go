package image

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/runtime/image/internal/benchimage"
)

// BenchmarkPull pulls the ~200 MiB, 5-layer benchmark image from an
// in-process registry on loopback: cold (empty store: download, verify,
// unpack) and warm (already stored: one manifest request).
func BenchmarkPull(b *testing.B) {
	img, size, err := benchimage.Build()
	if err != nil {
		b.Fatal(err)
	}
	reg := registries(b)[0]
	ref := reg.push(b, "bench", img)
	ctx := context.Background()

	b.Run("cold", func(b *testing.B) {
		b.SetBytes(size)
		var peak uint64
		for b.Loop() {
			b.StopTimer()
			root, err := os.MkdirTemp(b.TempDir(), "store")
			if err != nil {
				b.Fatal(err)
			}
			s := openStore(b, root)
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				// Sample the heap while pulling: the pull streams, so
				// its growth must stay far below the image size. (The
				// in-process registry's copy of the image is in base.)
				defer close(sampled)
				t := time.NewTicker(5 * time.Millisecond)
				defer t.Stop()
				var ms runtime.MemStats
				for {
					select {
					case <-done:
						return
					case <-t.C:
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > base.HeapInuse {
						peak = max(peak, ms.HeapInuse-base.HeapInuse)
					}
				}
			}()
			b.StartTimer()
			if _, err := s.Pull(ctx, ref); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			close(done)
			<-sampled
			removeTree(root)
			b.StartTimer()
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-growth-MiB")
	})

	b.Run("warm", func(b *testing.B) {
		root := filepath.Join(b.TempDir(), "store")
		s := openStore(b, root)
		if _, err := s.Pull(ctx, ref); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Pull(ctx, ref); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("lookup", func(b *testing.B) {
		root := filepath.Join(b.TempDir(), "store")
		s := openStore(b, root)
		if _, err := s.Pull(ctx, ref); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Lookup(ctx, ref); err != nil {
				b.Fatal(err)
			}
		}
	})
}
