package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// reachableTempDir returns a fresh directory every user can traverse
// (t.TempDir is 0700, which would hide the store on its own).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sbx-image-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStoreIsPrivate: the store's directories are 0700 and the caller's;
// an existing store with open modes is repaired, and a symlink inside the
// store or a root of another user's is refused.
func TestStoreIsPrivate(t *testing.T) {
	root := filepath.Join(reachableTempDir(t), "store")
	openStore(t, root)
	check := func() {
		t.Helper()
		for _, d := range append([]string{"."}, storeDirs...) {
			st, err := os.Lstat(filepath.Join(root, d))
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v %v, want a 0700 directory", d, st.Mode(), err)
			}
		}
	}
	check()
	// A store made by an older sbx, with 0755 directories, is repaired.
	for _, d := range append([]string{"."}, storeDirs...) {
		os.Chmod(filepath.Join(root, d), 0o755)
	}
	openStore(t, root)
	check()

	// A symlink in place of one of its directories is refused.
	elsewhere := t.TempDir()
	os.Remove(filepath.Join(root, "tmp"))
	if err := os.Symlink(elsewhere, filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root)
	if err == nil || !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("store with a tmp symlink: %v", err)
	}
	os.Remove(filepath.Join(root, "tmp"))

	// Nothing inside the store is read through a symlink.
	secret := filepath.Join(t.TempDir(), "secret.json")
	os.WriteFile(secret, []byte(`{"version":1,"images":{}}`), 0o600)
	if err := os.Symlink(secret, filepath.Join(root, "images.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t, root).List(context.Background()); !errors.Is(err, unix.ELOOP) {
		t.Errorf("List with images.json a symlink: %v, want ELOOP", err)
	}
	os.Remove(filepath.Join(root, "images.json"))

	// The root may be a symlink (a store moved to another disk).
	link := filepath.Join(reachableTempDir(t), "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	openStore(t, link)

	if !isRoot {
		return
	}
	// A root that belongs to another user would hand them what root
	// unpacks (setuid files included): refused with the fix.
	if err := os.Chown(root, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = Open(root)
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") || !strings.Contains(err.Error(), "SBX_HOME") {
		t.Errorf("store of another user: %v", err)
	}
}

// TestSetuidUnreachable pulls, as root, an image with a setuid-root file,
// which the layer keeps, and checks that another user cannot reach it:
// every setuid or setgid file in the store lies below a directory that
// belongs to root and is closed to group and others, and a process running
// as uid 65534 can neither stat nor execute it.
func TestSetuidUnreachable(t *testing.T) {
	if !isRoot {
		t.Skip("unpacking setuid-root files and switching to uid 65534 need root")
	}
	reg := registries(t)[0]
	ref := reg.push(t, "setuid", imageOf(t, v1.Config{}, layerOf(t, tarBytes(t, []tentry{
		dirE("bin/", 0o755),
		fileE("bin/suid", busybox(t), 0o4755),
		{name: "bin/sgid", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o2755, gid: 42},
	}))))
	root := filepath.Join(reachableTempDir(t), "store")
	img, err := openStore(t, root).Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(img.LayerDirs[0], "bin", "suid")
	if st, err := os.Stat(suid); err != nil || st.Mode()&fs.ModeSetuid == 0 {
		t.Fatalf("the layer lost its setuid file: %v %v", st, err)
	}

	var special []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if st, err := d.Info(); err == nil && st.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 && !st.IsDir() {
			special = append(special, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(special) != 2 {
		t.Fatalf("setuid/setgid files in the store: %v, want 2", special)
	}
	for _, p := range special {
		// Walk from the store root down to the file: one directory on
		// the way must shut out everyone but its owner, root.
		closed := false
		for d := root; d != filepath.Dir(p); {
			var st unix.Stat_t
			if err := unix.Stat(d, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid == 0 && st.Mode&0o011 == 0 {
				closed = true
				break
			}
			rel, _ := filepath.Rel(d, p)
			d = filepath.Join(d, strings.Split(rel, string(filepath.Separator))[0])
		}
		if !closed {
			t.Errorf("%s: every directory from the store root down to it is open to other users", p)
		}
	}

	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	// The control: uid 65534 runs what it can reach.
	ctl := exec.Command("/bin/true")
	ctl.SysProcAttr = nobody
	if err := ctl.Run(); err != nil {
		t.Fatalf("running /bin/true as uid 65534: %v", err)
	}
	for _, p := range special {
		cmd := exec.Command(p)
		cmd.SysProcAttr = nobody
		if err := cmd.Run(); !errors.Is(err, syscall.EACCES) {
			t.Errorf("executing %s as uid 65534: %v, want permission denied", p, err)
		}
		st := exec.Command("stat", p)
		st.SysProcAttr = nobody
		out, err := st.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("stat %s as uid 65534: %v: %s", p, err, out)
		}
	}
}

// TestDeviceNodesNeutralised: device nodes in a layer (a char and a block
// device, a hard link to one, and the hostile fixture's null device) are
// never created, privileged or not, with either resolver; they are listed
// in the layer's sidecar and the rest of the layer unpacks.
func TestDeviceNodesNeutralised(t *testing.T) {
	reg := registries(t)[0]
	crafted := layerOf(t, tarBytes(t, []tentry{
		dirE("dev/", 0o755),
		{name: "dev/mem", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 1},
		{name: "dev/sda", typ: tar.TypeBlock, mode: 0o666, major: 8, minor: 0},
		hardlinkE("dev/mem2", "dev/mem"),
		fileE("dev/readme", "no devices here\n", 0o644),
	}))
	fixture, err := tarball.LayerFromFile(filepath.Join("..", "..", "testdata", "image", "hostile", "device.tar"))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.push(t, "devices", imageOf(t, v1.Config{}, crafted, fixture))
	forEachResolver(t, func(t *testing.T, portable bool) {
		for _, unprivileged := range []bool{false, true} {
			var opts []Option
			if portable {
				opts = append(opts, withPortableResolver())
			}
			if unprivileged {
				opts = append(opts, WithUnprivileged())
			}
			s := openStore(t, t.TempDir(), opts...)
			img, err := s.Pull(context.Background(), ref)
			if err != nil {
				t.Fatalf("unprivileged=%v: %v", unprivileged, err)
			}
			diffTrees(t, "crafted layer", treeOf(t, img.LayerDirs[0], false), map[string]string{
				"dev":        "dir -rwxr-xr-x",
				"dev/readme": fileDesc(0o644, "no devices here\n"),
			})
			for i, want := range [][]string{{"dev/mem", "dev/mem2", "dev/sda"}, {"dev/sbx-null"}} {
				for p := range treeOf(t, img.LayerDirs[i], false) {
					if strings.HasPrefix(p, "dev/") && p != "dev/readme" {
						t.Errorf("layer %d: %s was created", i+1, p)
					}
				}
				b, err := os.ReadFile(img.LayerDirs[i] + ".json")
				if err != nil {
					t.Fatalf("layer %d sidecar: %v", i+1, err)
				}
				var side sidecar
				if err := json.Unmarshal(b, &side); err != nil {
					t.Fatal(err)
				}
				slices.Sort(side.Devices)
				if !slices.Equal(side.Devices, want) {
					t.Errorf("layer %d sidecar devices = %v, want %v", i+1, side.Devices, want)
				}
			}
		}
	})
}
