package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A full disk does not lock the user out: with no byte left where the project lives, stop,
// restart and down still work (nothing they need is written first).
func TestE2EFullDisk(t *testing.T) {
	bin, image := e2eSetup(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	p := &project{t: t, dir: dir, bin: bin, image: image, home: t.TempDir()}
	p.write(hostileProject)
	t.Cleanup(func() { p.sbx("down") })
	p.must("up")
	// Fill the file system to the last byte.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	f.Close()
	// Starting needs space: it is refused at once, saying so.
	if r := p.sbx("restart", "web"); r.code == 0 || !strings.Contains(r.stderr, "no space left on the device") {
		t.Errorf("restart on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := p.sbx("stop"); r.code != 0 || !strings.Contains(r.stdout, "web: stopped") {
		t.Errorf("stop on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := p.sbx("down"); r.code != 0 {
		t.Errorf("down on a full disk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("after down on a full disk: %+v", rows)
	}
}
