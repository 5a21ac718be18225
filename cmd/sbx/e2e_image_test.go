package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sbx-dev/sbx/runtime/image"
)

// TestE2EPullImagesPrune pulls the busybox image from an in-process registry on loopback with
// sbx pull, lists it with sbx images and frees it with sbx prune --all.
func TestE2EPullImagesPrune(t *testing.T) {
	_, imgDir := e2eSetup(t)
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	// Push the test image to the registry.
	lp, err := layout.FromPath(imgDir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/test/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	p := newProject(t, `
sandbox "a" {
  image = "`+host+`/test/busybox:1"
}
`)
	out := p.must("pull")
	if !strings.Contains(out, digest.String()) {
		t.Fatalf("pull printed:\n%s", out)
	}
	var entries []image.Entry
	if err := json.Unmarshal([]byte(p.must("images", "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Digest != digest.String() || !strings.Contains(entries[0].Ref, "test/busybox:1") {
		t.Fatalf("images: %+v", entries)
	}
	// In use by the Sandboxfile: prune keeps it, even with --all.
	p.must("prune", "--all")
	if err := json.Unmarshal([]byte(p.must("images", "--json")), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("prune --all removed an image the Sandboxfile uses: %+v %v", entries, err)
	}
	// Not in use any more: prune --all frees it.
	p.write("sandbox \"a\" {\n  image = \"IMAGE\"\n}\n")
	out = p.must("prune", "--all")
	if !strings.Contains(out, "1 images") {
		t.Errorf("prune --all: %s", out)
	}
	if err := json.Unmarshal([]byte(p.must("images", "--json")), &entries); err != nil || len(entries) != 0 {
		t.Fatalf("after prune: %+v %v", entries, err)
	}
	// A reference to an unknown image fails clearly.
	if r := p.sbx("pull", "--image", host+"/test/missing:1"); r.code != 1 || !strings.Contains(r.stderr, "test/missing") {
		t.Errorf("pull of a missing image: %d %s", r.code, r.stderr)
	}
}

// TestE2EPruneKeepsOtherProjectsImages runs a sandbox in one project, then prunes the shared
// image store with --all from another project: the running sandbox's image stays.
func TestE2EPruneKeepsOtherProjectsImages(t *testing.T) {
	a := newProject(t, `
project { driver = "ns" }
sandbox "svc" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
}
`)
	a.must("up")
	b := newProject(t, "sandbox \"other\" {\n  image = \"docker.io/library/alpine:3\"\n}\n")
	b.home = a.home
	b.must("prune", "--all")
	var entries []image.Entry
	if err := json.Unmarshal([]byte(b.must("images", "--json")), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("prune --all from another project removed a running sandbox's image: %+v %v", entries, err)
	}
	a.must("restart", "svc")
	a.must("down")
	out := b.must("prune", "--all")
	if !strings.Contains(out, "1 images") {
		t.Errorf("once nothing uses it, prune --all frees it: %s", out)
	}
}
