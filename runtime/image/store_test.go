package image

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var isRoot = os.Geteuid() == 0

// wantBase and wantTop are the unpacked test layers, privileged or not.
func wantBase(t testing.TB, privileged bool) map[string]string {
	own := func(s, o string) string {
		if privileged {
			return s + " " + o
		}
		return s
	}
	su := fs.FileMode(0o755)
	ro := fs.FileMode(0o555)
	if privileged {
		su |= fs.ModeSetuid
	} else {
		ro |= 0o700
	}
	return map[string]string{
		"bin":             own("dir drwxr-xr-x", "0:0"),
		"bin/busybox":     own(fileDesc(0o755, busybox(t)), "0:0"),
		"bin/sh":          own("symlink busybox", "0:0"),
		"bin/ls":          own("symlink /bin/busybox", "0:0"),
		"bin/su":          own(fileDesc(su, "not really su\n"), "0:0"),
		"etc":             own("dir drwxr-xr-x", "0:0"),
		"etc/passwd":      own(fileDesc(0o644, "root:x:0:0:root:/root:/bin/sh\n"), "0:0"),
		"etc/shadow":      own(fileDesc(0o640, "root:*:1::::::\n"), "0:42"),
		"home":            own("dir drwxr-xr-x", "0:0"),
		"home/user":       own("dir drwx------", "1000:1000"),
		"home/user/notes": own(fileDesc(0o600, "mine\n"), "1000:1000"),
		"data":            own("dir drwxr-xr-x", "0:0"),
		"data/a":          own(fileDesc(0o644, "version 1\n"), "0:0"),
		"data/b":          own(fileDesc(0o644, "version 1\n")+" =data/a", "0:0"),
		"opaque":          own("dir drwxr-xr-x", "0:0"),
		"opaque/old1":     own(fileDesc(0o644, "old\n"), "0:0"),
		"opaque/old2":     own(fileDesc(0o644, "old\n"), "0:0"),
		"gone":            own(fileDesc(0o644, "soon gone\n"), "0:0"),
		"ro":              own("dir "+ro.String(), "0:0") + "",
		"ro/file":         own(fileDesc(0o444, "read-only dir\n"), "0:0"),
		"fifo":            own("fifo -rw-------", "0:0"),
	}
}

func fixDirMode(m map[string]string) map[string]string {
	// fs.FileMode.String prints directories' permission bits only.
	for k, v := range m {
		m[k] = strings.Replace(v, "dir d", "dir -", 1)
	}
	return m
}

func wantTop(privileged bool) map[string]string {
	own := func(s string) string {
		if privileged {
			return s + " 0:0"
		}
		return s
	}
	whiteout := own("char 0:0")
	if !privileged {
		whiteout = fileDesc(0, "")
	}
	return map[string]string{
		"gone":       whiteout,
		"opaque":     own("dir drwxr-xr-x"),
		"opaque/new": own(fileDesc(0o644, "new\n")),
		"data":       own("dir drwxr-xr-x"),
		"data/a":     own(fileDesc(0o644, "version 2\n")),
		"data/a2":    own(fileDesc(0o644, "version 2\n") + " =data/a"),
		"data/b":     whiteout,
		"data/c":     own(fileDesc(0o600, "c\n")),
		"data/c2":    own(fileDesc(0o600, "c\n") + " =data/c"),
		"data/c3":    own(fileDesc(0o600, "c\n") + " =data/c"),
	}
}

func TestPullFromRegistry(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		ctx := context.Background()
		img := testImage(t)
		ref := reg.push(t, "busybox", img)
		root := t.TempDir()
		s := openStore(t, root)

		var mu sync.Mutex
		states := map[string][]LayerState{}
		prog := ProgressFunc(func(p LayerProgress) {
			mu.Lock()
			defer mu.Unlock()
			if l := states[p.Digest]; len(l) == 0 || l[len(l)-1] != p.State {
				states[p.Digest] = append(l, p.State)
			}
		})
		got, err := s.Pull(ctx, ref, WithProgress(prog))
		if err != nil {
			t.Fatal(err)
		}
		wantDigest, _ := img.Digest()
		if got.Digest != wantDigest.String() {
			t.Errorf("Digest = %s, want %s", got.Digest, wantDigest)
		}
		if !reflect.DeepEqual(got.Config, testConfig) {
			t.Errorf("Config = %+v, want %+v", got.Config, testConfig)
		}
		if got.Platform == nil || got.Platform.OS != "linux" || got.Platform.Architecture != runtime.GOARCH {
			t.Errorf("Platform = %v", got.Platform)
		}
		if len(got.LayerDirs) != 2 || got.RootDir != "" {
			t.Fatalf("LayerDirs = %v, RootDir = %q", got.LayerDirs, got.RootDir)
		}
		diffTrees(t, "base layer", treeOf(t, got.LayerDirs[0], isRoot), fixDirMode(wantBase(t, isRoot)))
		diffTrees(t, "top layer", treeOf(t, got.LayerDirs[1], isRoot), fixDirMode(wantTop(isRoot)))
		if v, ok := xattr(t, filepath.Join(got.LayerDirs[0], "home/user/notes"), "user.sbx.test"); !ok || v != "kept" {
			t.Errorf("user.sbx.test xattr = %q, %v; want kept", v, ok)
		}
		if _, ok := xattr(t, filepath.Join(got.LayerDirs[0], "home/user/notes"), "trusted.overlay.opaque"); ok {
			t.Errorf("a layer's own trusted.overlay.* xattr was applied")
		}
		for _, p := range []string{"etc/passwd", "ro"} {
			fi, err := os.Lstat(filepath.Join(got.LayerDirs[0], p))
			if err != nil {
				t.Error(err)
			} else if fi.ModTime().Unix() != testTime.Unix() {
				t.Errorf("%s mtime = %v, want %v", p, fi.ModTime().Unix(), testTime.Unix())
			}
		}
		if isRoot {
			if v, _ := xattr(t, filepath.Join(got.LayerDirs[1], "opaque"), "trusted.overlay.opaque"); v != "y" {
				t.Errorf("opaque/ trusted.overlay.opaque = %q, want y", v)
			}
		}
		for d, st := range states {
			if st[0] != StateWaiting || st[len(st)-1] != StateDone {
				t.Errorf("layer %s states %v: want waiting … done", d, st)
			}
		}

		// Lookup and Digest: no network.
		lk, err := s.Lookup(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(lk.LayerDirs, got.LayerDirs) || lk.Digest != got.Digest {
			t.Errorf("Lookup = %+v, Pull = %+v", lk, got)
		}
		if d, err := s.Digest(ctx, ref); err != nil || d != got.Digest {
			t.Errorf("Digest = %s, %v", d, err)
		}
		if d, err := s.Resolve(ctx, ref); err != nil || d != got.Digest {
			t.Errorf("Resolve = %s, %v", d, err)
		}
		entries, err := s.List(ctx)
		if err != nil || len(entries) != 1 || entries[0].Digest != got.Digest || entries[0].Size == 0 || entries[0].LastUsed.IsZero() {
			t.Errorf("List = %+v, %v", entries, err)
		}
		if _, err := s.Lookup(ctx, reg.host+"/nope:latest"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup of an unknown image: %v, want ErrNotFound", err)
		}

		// A second pull fetches no blob and reports every layer cached.
		reg.resetCounts()
		var cached int
		_, err = s.Pull(ctx, ref, WithProgress(ProgressFunc(func(p LayerProgress) {
			if p.State == StateCached {
				mu.Lock()
				cached++
				mu.Unlock()
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		if len(reg.counts) != 0 || cached != 2 {
			t.Errorf("warm pull fetched %v, %d layers cached", reg.counts, cached)
		}
	})
}

func TestPullUnprivileged(t *testing.T) {
	reg := registries(t)[0]
	ref := reg.push(t, "busybox", testImage(t))
	s := openStore(t, t.TempDir(), WithUnprivileged())
	got, err := s.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	diffTrees(t, "base layer", treeOf(t, got.LayerDirs[0], false), fixDirMode(wantBase(t, false)))
	diffTrees(t, "top layer", treeOf(t, got.LayerDirs[1], false), fixDirMode(wantTop(false)))
	top := got.LayerDirs[1]
	checks := []struct{ path, attr, want string }{
		{"gone", "user.overlay.whiteout", ""},
		{"data/b", "user.overlay.whiteout", ""},
		{".", "user.overlay.opaque", "x"},
		{"data", "user.overlay.opaque", "x"},
		{"opaque", "user.overlay.opaque", "y"},
	}
	for _, c := range checks {
		if v, ok := xattr(t, filepath.Join(top, c.path), c.attr); !ok || v != c.want {
			t.Errorf("%s %s = %q, %v; want %q", c.path, c.attr, v, ok, c.want)
		}
	}
	var side sidecar
	b, err := os.ReadFile(got.LayerDirs[1] + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(side.Whiteouts, []string{"gone", "data/b"}) || !slices.Equal(side.Opaque, []string{"opaque"}) {
		t.Errorf("top sidecar = %+v", side)
	}
	b, err = os.ReadFile(got.LayerDirs[0] + ".json")
	if err != nil {
		t.Fatal(err)
	}
	side = sidecar{}
	json.Unmarshal(b, &side)
	want := map[string][2]int{"etc/shadow": {0, 42}, "home/user": {1000, 1000}, "home/user/notes": {1000, 1000}}
	if !reflect.DeepEqual(side.Owners, want) {
		t.Errorf("base sidecar owners = %v, want %v", side.Owners, want)
	}
}

func TestIndexResolvesHostPlatform(t *testing.T) {
	reg := registries(t)[0]
	mk := func(arch, marker string) v1.Image {
		img := imageOf(t, v1.Config{Cmd: []string{marker}}, layerOf(t, tarBytes(t, []tentry{fileE("arch", marker, 0o644)})))
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture = arch
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: mk(other, "other"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: mk(runtime.GOARCH, "host"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	tag, _ := name.NewTag(reg.host + "/multi/arch:latest")
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	img, err := s.Pull(context.Background(), tag.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Config.Cmd, []string{"host"}) {
		t.Errorf("resolved to %v, want the host's image", img.Config.Cmd)
	}
	if d, _ := s.Resolve(context.Background(), tag.String()); d != img.Digest {
		t.Errorf("Resolve = %s, Pull = %s", d, img.Digest)
	}
}

func TestLocalSources(t *testing.T) {
	ctx := context.Background()
	img := testImage(t)
	digest, _ := img.Digest()
	dir := t.TempDir()

	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.com/test:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)

	s := openStore(t, filepath.Join(dir, "store"))
	for _, c := range []struct{ ref, digest string }{
		{"oci-layout:" + filepath.Join(dir, "layout"), digest.String()},
		{"oci-layout:" + filepath.Join(dir, "layout") + ":v1", digest.String()},
		{"oci-layout:" + filepath.Join(dir, "layout") + "@" + digest.String(), digest.String()},
		{"docker-archive:" + archive, cfgName.String()},
	} {
		t.Run(c.ref, func(t *testing.T) {
			got, err := s.Pull(ctx, c.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != c.digest || len(got.LayerDirs) != 2 || !reflect.DeepEqual(got.Config, testConfig) {
				t.Fatalf("Pull = %+v", got)
			}
			diffTrees(t, "top layer", treeOf(t, got.LayerDirs[1], isRoot), fixDirMode(wantTop(isRoot)))
			if lk, err := s.Lookup(ctx, c.ref); err != nil || lk.Digest != c.digest {
				t.Errorf("Lookup = %+v, %v", lk, err)
			}
		})
	}
	got, err := s.Pull(ctx, "dir:"+rootfs)
	if err != nil || got.RootDir != rootfs || len(got.LayerDirs) != 0 {
		t.Errorf("Pull dir: = %+v, %v", got, err)
	}
	if _, err := s.Lookup(ctx, "dir:"+filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Lookup of a missing dir: succeeded")
	}
	if _, err := s.Pull(ctx, "oci-layout:"+filepath.Join(dir, "layout")+":nope"); err == nil {
		t.Errorf("Pull of an unknown layout tag: succeeded")
	}
}

func TestDefaultRoot(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SBX_HOME": "/x/sbx", "XDG_DATA_HOME": "/d", "HOME": "/h"}, "/x/sbx"},
		{map[string]string{"XDG_DATA_HOME": "/d", "HOME": "/h"}, "/d/sbx"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/sbx"},
	} {
		if got, err := DefaultRoot(env(c.env)); err != nil || got != c.want {
			t.Errorf("DefaultRoot(%v) = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if _, err := DefaultRoot(env(nil)); err == nil {
		t.Errorf("DefaultRoot without HOME: no error")
	}
}

func TestParseSource(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":              "index.docker.io/library/busybox:latest",
		"ghcr.io/acme/api:1.4": "ghcr.io/acme/api:1.4",
		"quay.io/x/y@sha256:" + strings.Repeat("a", 64): "quay.io/x/y@sha256:" + strings.Repeat("a", 64),
		"localhost:5000/x":      "localhost:5000/x:latest",
		"oci-layout:/l:v1":      "oci-layout:/l:v1",
		"oci-layout:/l":         "oci-layout:/l",
		"docker-archive:/a.tar": "docker-archive:/a.tar",
		"dir:/r":                "dir:/r",
	} {
		src, err := parseSource(in, nil)
		if err != nil || src.key != want {
			t.Errorf("parseSource(%q) = %v, %v; want %q", in, src, err, want)
		}
	}
	src, _ := parseSource("reg.example:5000/x", map[string]bool{"reg.example:5000": true})
	if src.ref.Context().Registry.Scheme() != "http" {
		t.Errorf("insecure registry scheme = %s", src.ref.Context().Registry.Scheme())
	}
}

func TestPullUnknownImage(t *testing.T) {
	reg := registries(t)[0]
	_, err := openStore(t, t.TempDir()).Pull(context.Background(), reg.host+"/no/such:image")
	if err == nil || !strings.Contains(err.Error(), "check the image name") || !strings.Contains(err.Error(), "pull "+reg.host+"/no/such:image") {
		t.Errorf("err = %v", err)
	}
}
