package sbxinit

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestCopyInOut(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	s := start(t, root, baseConfig("sleep", "60"), nil)
	c := s.client(t)
	ctx := context.Background()

	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000, ModTime: mtime},
		{Name: "pkg/run.sh", Typeflag: tar.TypeReg, Mode: 0o4751, Size: 5, Uid: 1000, Gid: 2000, ModTime: mtime},
		{Name: "pkg/secret", Typeflag: tar.TypeReg, Mode: 0o600, Size: 5, ModTime: mtime},
		{Name: "pkg/link", Typeflag: tar.TypeSymlink, Linkname: "run.sh", ModTime: mtime},
		{Name: "pkg/deep/er/file", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, ModTime: mtime},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("data\n"))
		}
	}
	tw.Close()
	if err := c.CopyTo(ctx, "/tmp", bytes.NewReader(in.Bytes())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := c.Exec(ctx, ExecRequest{Argv: []string{"sh", "-c", "cd /tmp/pkg && stat -c '%n %a %u:%g %Y' . run.sh secret deep/er/file && readlink link && cat run.sh"}}, nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v\n%s", code, err, out.String())
	}
	want := fmt.Sprintf(". 750 1000:1000 %[1]d\nrun.sh 4751 1000:2000 %[1]d\nsecret 600 0:0 %[1]d\ndeep/er/file 644 0:0 %[1]d\nrun.sh\ndata\n", mtime.Unix())
	if out.String() != want {
		t.Errorf("in the sandbox:\n%s\nwant\n%s", out.String(), want)
	}

	// Out again: the same modes, owners and contents.
	var back bytes.Buffer
	if err := c.CopyFrom(ctx, "/tmp/pkg", &back); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&back)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = fmt.Sprintf("%c %o %d:%d %s%s", h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, h.Linkname, body)
	}
	for name, w := range map[string]string{
		"pkg/":             "5 750 1000:1000 ",
		"pkg/run.sh":       "0 4751 1000:2000 data\n",
		"pkg/secret":       "0 600 0:0 data\n",
		"pkg/link":         "2 777 0:0 run.sh",
		"pkg/deep/er/file": "0 644 0:0 data\n",
	} {
		if got[name] != w {
			t.Errorf("copied out %s: %q, want %q", name, got[name], w)
		}
	}

	// Errors: a missing path, a non-directory destination, an entry leaving the directory.
	if err := c.CopyFrom(ctx, "/nonexistent", io.Discard); err == nil || !strings.Contains(err.Error(), "copy from /nonexistent: no such file or directory") {
		t.Errorf("copy from a missing path: %v", err)
	}
	if err := c.CopyTo(ctx, "/tmp/pkg/secret", bytes.NewReader(in.Bytes())); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("copy to a file: %v", err)
	}
	var evil bytes.Buffer
	tw = tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if err := c.CopyTo(ctx, "/tmp", &evil); err == nil || !strings.Contains(err.Error(), "'..'") {
		t.Errorf("copy of ../escape: %v", err)
	}
	// A symlink in the sandbox does not take a copy out of the directory.
	if code, err := c.Exec(ctx, ExecRequest{Argv: []string{"sh", "-c", "mkdir -p /tmp/box && ln -s /etc /tmp/box/up"}}, nil, nil, nil); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	var sneaky bytes.Buffer
	tw = tar.NewWriter(&sneaky)
	tw.WriteHeader(&tar.Header{Name: "up/owned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if err := c.CopyTo(ctx, "/tmp/box", &sneaky); err == nil || !strings.Contains(err.Error(), "up/owned: a symlink or file is in the way") {
		t.Errorf("copy through a symlink: %v", err)
	}
	out.Reset()
	c.Exec(ctx, ExecRequest{Argv: []string{"sh", "-c", "ls /etc/owned /tmp/box/etc/owned 2>&1; true"}}, nil, &out, &out)
	if strings.Count(out.String(), "No such file") != 2 {
		t.Errorf("a symlink redirected the copy:\n%s", out.String())
	}
	// The connection still serves requests after the refusals.
	if st, err := c.Status(ctx); err != nil || st.State != StateRunning {
		t.Errorf("status: %+v %v", st, err)
	}
}

// TestStaticNetwork moves one end of a veth pair into the init's network namespace and
// checks the init configured it: address, MTU, default route, /etc files, and a ping to the
// host end.
func TestStaticNetwork(t *testing.T) {
	needRoot(t)
	root := newRoot(t, true)
	tag := fmt.Sprintf("%05x", rand.IntN(1<<20))
	hostIf, guestIf := "sbxih"+tag, "sbxig"+tag
	third := 100 + rand.IntN(150)
	hostAddr := netip.MustParseAddr(fmt.Sprintf("10.213.%d.1", third))
	guestAddr := netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("10.213.%d.2", third)), 24)

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: guestIf}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	host, err := netlink.LinkByName(hostIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: hostAddr.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		t.Fatal(err)
	}

	cfg := baseConfig("sh", "-c", `touch /sys/x 2>/dev/null || cat /sys/class/net/`+guestIf+`/mtu; ip -4 addr show `+guestIf+` | grep -o 'inet [0-9./]*'; ip route | grep default; cat /etc/hosts /etc/resolv.conf; ping -c1 -W5 `+hostAddr.String()+` >/dev/null && echo ping-ok; (echo x >> /etc/hosts) 2>/dev/null || echo hosts-read-only`)
	cfg.Mounts = append(cfg.Mounts, Mount{Type: Sysfs, Target: "/sys", ReadOnly: true})
	cfg.Network = &Network{
		Interface: guestIf,
		Address:   guestAddr,
		Gateway:   hostAddr,
		MTU:       1400,
		DNS:       []netip.Addr{hostAddr, netip.MustParseAddr("192.0.2.53")},
		Search:    []string{"sbx.internal"},
		Hosts:     []Host{{Name: "db", Addr: netip.MustParseAddr(fmt.Sprintf("10.213.%d.3", third))}},
	}
	// A network namespace holding the guest end before the init starts; the init is cloned
	// from a thread inside it, as the ns driver joins a prepared namespace.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // switches this thread
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var s *sandbox
	func() {
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic(err) // this thread must not go back to the pool in the wrong namespace
			}
			runtime.UnlockOSThread()
		}()
		hostNS, err := netlink.NewHandleAt(orig)
		if err != nil {
			t.Fatal(err)
		}
		defer hostNS.Close()
		guest, err := hostNS.LinkByName(guestIf)
		if err != nil {
			t.Fatal(err)
		}
		if err := hostNS.LinkSetNsFd(guest, int(ns)); err != nil {
			t.Fatal(err)
		}
		// An address something else gave it (DHCP) is replaced by the configured one.
		guest, err = netlink.LinkByName(guestIf)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrAdd(guest, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 77), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		s = start(t, root, cfg, func(cmd *exec.Cmd) { cmd.SysProcAttr.Cloneflags &^= syscall.CLONE_NEWNET })
	}()
	code, out := s.wait(t)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	want := fmt.Sprintf("1400\ninet %s\ndefault via %s dev %s \n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\tsbxtest\n10.213.%d.3\tdb\nnameserver %s\nnameserver 192.0.2.53\nsearch sbx.internal\nping-ok\nhosts-read-only\n",
		guestAddr, hostAddr, guestIf, guestAddr.Addr(), third, hostAddr)
	if out != want {
		t.Errorf("in the sandbox:\n%s\nwant\n%s", out, want)
	}
}
