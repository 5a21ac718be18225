package image

import (
	"context"
	"errors"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobsOf lists the config and layer digests of img.
func blobsOf(t testing.TB, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{m.Config.Digest.String()}
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

func manyLayers(t testing.TB, n int) v1.Image {
	var layers []v1.Layer
	for i := range n {
		body := make([]byte, 256<<10)
		for j := range body {
			body[j] = byte(i*7 + j*13 + j/97)
		}
		layers = append(layers, layerOf(t, tarBytes(t, []tentry{
			dirE("d/", 0o755),
			fileE("d/f"+string(rune('a'+i)), string(body), 0o644),
		})))
	}
	return imageOf(t, v1.Config{Cmd: []string{"x"}}, layers...)
}

// TestConcurrentPulls: two Stores on one root (two sbx processes) pull the
// same image at once; both succeed and every blob is fetched once.
func TestConcurrentPulls(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		img := manyLayers(t, 5)
		ref := reg.push(t, "many", img)
		reg.resetCounts()
		root := t.TempDir()
		stores := []*Store{openStore(t, root), openStore(t, root)}
		var wg sync.WaitGroup
		results := make([]*Image, 4)
		errs := make([]error, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Two pulls per Store: in-process and cross-process.
				results[i], errs[i] = stores[i%2].Pull(context.Background(), ref)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("pull %d: %v", i, err)
			}
			if results[i].Digest != results[0].Digest || len(results[i].LayerDirs) != 5 {
				t.Errorf("pull %d: %+v", i, results[i])
			}
		}
		for _, d := range blobsOf(t, img) {
			if n := reg.count(d); n != 1 {
				t.Errorf("blob %s fetched %d times, want 1", d, n)
			}
		}
		entries, _ := stores[1].List(context.Background())
		if len(entries) != 1 {
			t.Errorf("List = %+v", entries)
		}
	})
}

// TestInterruptedPull: a blob whose download breaks off fails the pull,
// leaves no partial blob visible, and the retry fetches only what was
// missing.
func TestInterruptedPull(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		for _, mode := range []string{"broken-connection", "cancelled"} {
			t.Run(mode, func(t *testing.T) { interruptedPull(t, reg, mode) })
		}
	})
}

func interruptedPull(t *testing.T, reg *testRegistry, mode string) {
	img := manyLayers(t, 5)
	ref := reg.push(t, "many", img)
	blobs := blobsOf(t, img)
	victim := blobs[3]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg.resetCounts()
	reg.setFail(func(d string) bool {
		if d != victim {
			return false
		}
		if mode == "cancelled" {
			cancel()
		}
		return true
	})
	root := t.TempDir()
	s := openStore(t, root, WithConcurrency(1))
	_, err := s.Pull(ctx, ref)
	if err == nil {
		t.Fatal("pull succeeded")
	}
	if mode == "cancelled" && !errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want context.Canceled", err)
	}
	if l := leftovers(t, root); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
	if exists(s.blobPath(victim)) {
		t.Errorf("the interrupted blob is visible")
	}
	if _, err := s.Lookup(context.Background(), ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after a failed pull: %v", err)
	}
	done := map[string]bool{}
	for _, d := range blobs {
		done[d] = exists(s.blobPath(d))
	}

	reg.setFail(nil)
	reg.resetCounts()
	if _, err := s.Pull(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	for _, d := range blobs {
		want := 1
		if done[d] {
			want = 0
		}
		if n := reg.count(d); n != want {
			t.Errorf("retry fetched %s %d times, want %d (stored before: %v)", d, n, want, done[d])
		}
	}
	if !done[blobs[0]] || !done[blobs[1]] {
		t.Errorf("nothing was stored before the failure: %v", done)
	}
}
