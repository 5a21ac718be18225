package image

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOverlayMount mounts the unpacked layers as overlayfs lowerdirs, as
// the runtime does, and checks the merged view.
func TestOverlayMount(t *testing.T) {
	if !isRoot {
		t.Skip("mounting overlayfs needs root")
	}
	reg := registries(t)[0]
	ref := reg.push(t, "busybox", testImage(t))
	s := openStore(t, t.TempDir())
	img, err := s.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	lower := img.LayerDirs[1] + ":" + img.LayerDirs[0]
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+lower); err != nil {
		t.Skipf("overlay mount: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	for _, gone := range []string{"gone", "data/b", "opaque/old1", "opaque/old2"} {
		if _, err := os.Lstat(filepath.Join(mnt, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s visible in the merged root: %v", gone, err)
		}
	}
	for p, want := range map[string]string{"opaque/new": "new\n", "data/a": "version 2\n", "data/c3": "c\n", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"} {
		if b, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}
