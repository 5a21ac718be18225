package image

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	reg := registries(t)[0]
	shared := layerOf(t, tarBytes(t, []tentry{fileE("shared", "both images\n", 0o644)}))
	onlyA := layerOf(t, tarBytes(t, []tentry{fileE("a", "image a\n", 0o644)}))
	onlyB := layerOf(t, tarBytes(t, []tentry{fileE("b", "image b\n", 0o644)}))
	refA := reg.push(t, "a", imageOf(t, v1.Config{Cmd: []string{"a"}}, shared, onlyA))
	refB := reg.push(t, "b", imageOf(t, v1.Config{Cmd: []string{"b"}}, shared, onlyB))
	root := t.TempDir()
	s := openStore(t, root, WithUnprivileged())
	a, err := s.Pull(ctx, refA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctx, refB)
	if err != nil {
		t.Fatal(err)
	}

	// Everything is referenced: nothing goes.
	freed, err := s.Prune(ctx, PruneOptions{})
	if err != nil || freed != (Freed{}) {
		t.Fatalf("Prune = %+v, %v; want nothing freed", freed, err)
	}

	// --all, with a in use: b's own layer, config and manifest go; the
	// shared layer stays.
	freed, err = s.Prune(ctx, PruneOptions{All: true, InUse: []string{refA}})
	if err != nil {
		t.Fatal(err)
	}
	if freed.Images != 1 || freed.Layers != 1 || freed.Blobs != 3 || freed.Bytes == 0 {
		t.Errorf("Prune --all = %+v; want 1 image, 1 layer, 3 blobs", freed)
	}
	if _, err := s.Lookup(ctx, refB); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup b after prune: %v", err)
	}
	if _, err := s.Lookup(ctx, refA); err != nil {
		t.Errorf("Lookup a after prune: %v", err)
	}
	if !exists(b.LayerDirs[0]) || exists(b.LayerDirs[1]) {
		t.Errorf("shared layer gone or b's layer kept")
	}

	// A sandbox still using a (by digest) keeps it under --all.
	freed, err = s.Prune(ctx, PruneOptions{All: true, Keep: []string{a.Digest}})
	if err != nil || freed.Images != 0 {
		t.Errorf("Prune with a kept = %+v, %v", freed, err)
	}
	// Forgotten but kept by digest: its blobs and layers stay.
	freed, err = s.Prune(ctx, PruneOptions{All: true})
	if err != nil || freed.Images != 1 {
		t.Fatalf("Prune --all = %+v, %v", freed, err)
	}
	if entries, _ := s.List(ctx); len(entries) != 0 {
		t.Errorf("List after prune --all = %+v", entries)
	}
	if exists(a.LayerDirs[0]) || exists(a.LayerDirs[1]) {
		t.Errorf("layers survived prune --all")
	}
	if l := leftovers(t, root); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

func TestPruneKeepsDigestsOfSandboxes(t *testing.T) {
	ctx := context.Background()
	reg := registries(t)[0]
	ref := reg.push(t, "a", imageOf(t, v1.Config{}, layerOf(t, tarBytes(t, []tentry{fileE("x", "x\n", 0o644)}))))
	s := openStore(t, t.TempDir())
	img, err := s.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	// The image is forgotten, but a sandbox's state names its manifest.
	freed, err := s.Prune(ctx, PruneOptions{All: true, Keep: []string{"sha256:" + strings.Repeat("0", 64)}})
	if err != nil || freed.Images != 1 || freed.Layers != 1 {
		t.Fatalf("Prune = %+v, %v", freed, err)
	}
	img2, err := s.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, PruneOptions{All: true, Keep: []string{img2.Digest}}); err != nil {
		t.Fatal(err)
	}
	if !exists(img.LayerDirs[0]) {
		t.Errorf("the layer of a manifest named in Keep was removed")
	}
}
