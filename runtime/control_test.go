package runtime_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// TestHasProgram looks programs up in a sandbox's layers as the init would in its root:
// PATH of its environment, the top layer first, symlinks (an image's applet links) counted.
func TestHasProgram(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(lower, "bin"), filepath.Join(upper, "usr", "local", "bin"), filepath.Join(lower, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "bin", "busybox"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"sleep": "busybox", "sh": "/bin/busybox", "host": "/etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(lower, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(upper, "usr", "local", "bin", "tool"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	rs := &spec.RunSpec{Dir: t.TempDir(), Image: spec.Image{Layers: []string{lower, upper}},
		Process: spec.Process{Env: []string{"PATH=/usr/local/bin:/bin"}}}
	for prog, want := range map[string]bool{
		"sleep": true, "sh": true, "/bin/sh": true, "tool": true, "/usr/local/bin/tool": true,
		"bash": false, "/bin/bash": false, "bin/sleep": false, "etc": false, "/etc": false,
		"host": true, // a link out of the root still names a program in the image
	} {
		if got := runtime.HasProgram(rs, prog); got != want {
			t.Errorf("HasProgram(%q) = %v, want %v", prog, got, want)
		}
	}
}

// TestDialControlLongPath: a sandbox directory too deep for a unix socket address is
// reached through /proc/self/fd, and a missing socket is one line saying why.
func TestDialControlLongPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 120 {
		dir = filepath.Join(dir, strings.Repeat("d", 30))
	}
	ctl := filepath.Join(dir, "ctl")
	if err := os.MkdirAll(ctl, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := runtime.DialControl(ctx, dir, 0); err == nil || !strings.Contains(err.Error(), "no control socket at "+runtime.ControlSocketPath(dir)) {
		t.Errorf("a missing socket: %v", err)
	}

	fd, err := unix.Open(ctl, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", "/proc/self/fd/"+strconv.Itoa(fd)+"/init.sock")
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The init's greeting, as the control protocol frames it: a request, then a reply.
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(hdr[1:]))); err != nil {
			return
		}
		rep := []byte(`{"version":1}`)
		out := append([]byte{'R', 0, 0, 0, byte(len(rep))}, rep...)
		_, _ = c.Write(out)
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := runtime.DialControl(ctx, dir, 5*time.Second)
	if err != nil {
		t.Fatalf("dial a socket at a %d-byte path: %v", len(runtime.ControlSocketPath(dir)), err)
	}
	c.Close()
}
