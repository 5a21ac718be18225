//go:build linux

package krun_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/krun"
)

// busyboxLayer writes a root layer holding busybox and a few applets.
func busyboxLayer(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is needed (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", ".sbx/ctl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "echo", "ls", "sleep", "touch", "grep", "ip"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRunMode runs a real guest through the stand-in without KVM: the VMM
// child enters the root (an overlay it mounts itself on upstream, the layers
// libkrun assembles on the fork), the share is where the init expects it,
// the exit status comes back, and the guest sees the same tree either way.
func TestRunMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run mode needs root (namespaces, mounts)")
	}
	base := busyboxLayer(t)
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "hello"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo pid=$$; cat /.sbx/shares/data/hello; echo; echo $GREETING; ls /proc/self/ns >/dev/null && touch /written; exit 3`
	for _, tc := range []struct {
		variant string
		root    func(cfg *krun.VMConfig, rw string)
	}{
		{variantUpstream, func(cfg *krun.VMConfig, rw string) {
			cfg.Overlay = &krun.Overlay{Lower: []string{base}, Upper: rw + "/upper", Work: rw + "/work", Merged: rw + "/merged"}
		}},
		{variantFork, func(cfg *krun.VMConfig, rw string) { cfg.Layers = []string{base, rw + "/upper"} }},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			rw := t.TempDir()
			for _, d := range []string{"upper", "work", "merged"} {
				if err := os.MkdirAll(filepath.Join(rw, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cfg := krun.VMConfig{
				CPUs: 1, MemoryMiB: 64,
				Mounts:        []krun.Mount{{Tag: "data", HostPath: share}},
				Net:           krun.Net{Mode: krun.NetNone},
				ExecPath:      "/bin/sh",
				Argv:          []string{"-c", script},
				Env:           []string{"GREETING=hi there", "PATH=/bin"},
				ConsoleOutput: filepath.Join(rw, "console.log"),
			}
			if tc.variant == variantFork {
				cfg.Net = krun.Net{Mode: krun.NetNone}
			}
			tc.root(&cfg, rw)
			child, _, err := spawnStandin(t, context.Background(), tc.variant, cfg, "KRUN_STANDIN_RUN=1")
			if err != nil {
				t.Fatal(err)
			}
			err = child.Wait(context.Background())
			var ee *krun.ExitError
			if !errors.As(err, &ee) || ee.Code != 3 {
				b, _ := os.ReadFile(ee.Log)
				c, _ := os.ReadFile(cfg.ConsoleOutput)
				t.Fatalf("Wait = %v, want exit 3\n%s\n%s", err, b, c)
			}
			out, _ := os.ReadFile(cfg.ConsoleOutput)
			for _, want := range []string{"pid=1\n", "from the host\n", "hi there\n"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("console lacks %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(filepath.Join(rw, "upper", "written")); err != nil {
				t.Errorf("the guest's write did not reach the writable layer: %v", err)
			}
			assertNoMount(t, rw)
		})
	}
}

// TestRunModeKillLeavesNoMount: SIGKILL of the VMM child leaves no mount of
// its root on the host, and no guest process.
func TestRunModeKillLeavesNoMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run mode needs root (namespaces, mounts)")
	}
	base := busyboxLayer(t)
	rw := t.TempDir()
	cfg := krun.VMConfig{
		CPUs: 1, MemoryMiB: 64,
		Overlay:       &krun.Overlay{Lower: []string{base}, Upper: rw + "/upper", Work: rw + "/work", Merged: rw + "/merged"},
		Net:           krun.Net{Mode: krun.NetNone},
		ExecPath:      "/bin/sh",
		Argv:          []string{"-c", "echo up; exec sleep 1000"},
		Env:           []string{},
		ConsoleOutput: filepath.Join(rw, "console.log"),
	}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(rw, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	child, _, err := spawnStandin(t, context.Background(), variantUpstream, cfg, "KRUN_STANDIN_RUN=1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(cfg.ConsoleOutput)
		select {
		case <-child.Done():
			t.Fatalf("child exited: %v\n%s", child.Wait(context.Background()), b)
		default:
		}
		return strings.Contains(string(b), "up\n")
	})
	if err := child.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-child.Done()
	assertNoMount(t, rw)
	waitFor(t, func() bool {
		out, _ := exec.Command("pgrep", "-f", "sleep 1000").Output()
		return len(strings.TrimSpace(string(out))) == 0
	})
}

func assertNoMount(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), dir) {
		t.Errorf("a mount under %s is left on the host:\n%s", dir, b)
	}
}

// TestRunModeTap: a tap NIC reaches the host with real packets. The host tap (as a caller
// would put on a bridge) gets the host's address; the guest configures eth0, which the
// stand-in connects to the tap as libkrun's virtio-net would, and pings the host.
func TestRunModeTap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run mode needs root (namespaces, mounts, tap devices)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	n := os.Getpid() % 250
	tap := "krt" + strconv.Itoa(os.Getpid()%100000)
	host, guest := fmt.Sprintf("10.231.%d.1", n), fmt.Sprintf("10.231.%d.2", n)
	for _, args := range [][]string{
		{"tuntap", "add", "dev", tap, "mode", "tap"},
		{"addr", "add", host + "/24", "dev", tap},
		{"link", "set", tap, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", tap).Run() })

	base := busyboxLayer(t)
	for _, a := range []string{"ping"} {
		if err := os.Symlink("busybox", filepath.Join(base, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	const mac = "02:0a:e7:00:00:02"
	cfg := krun.VMConfig{
		CPUs: 1, MemoryMiB: 64,
		Root:     base,
		Net:      krun.Net{Mode: krun.NetTap, Taps: []krun.Tap{{Name: tap, MAC: mac}}},
		ExecPath: "/bin/sh",
		Argv: []string{"-c", "ip link set eth0 up && ip addr add " + guest + "/24 dev eth0 && ip link show eth0 && " +
			"ping -c 1 -W 5 " + host + " && echo ping-ok; ip -o link | grep -c : "},
		Env:           []string{"PATH=/bin"},
		ConsoleOutput: filepath.Join(dir, "console.log"),
	}
	child, _, err := spawnStandin(t, context.Background(), variantUpstream, cfg, "KRUN_STANDIN_RUN=1")
	if err != nil {
		t.Fatal(err)
	}
	err = child.Wait(context.Background())
	out, _ := os.ReadFile(cfg.ConsoleOutput)
	if err != nil {
		t.Fatalf("guest: %v\n%s", err, out)
	}
	for _, want := range []string{"link/ether " + mac, "ping-ok", "\n2\n"} { // lo and eth0, nothing else
		if !strings.Contains(string(out), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

// TestRunModeVsock: a listening vsock port is a host unix socket whose connections reach the
// guest (the stand-in relays them to /.sbx/ctl/vsock-PORT.sock in the guest).
func TestRunModeVsock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run mode needs root (namespaces, mounts)")
	}
	root := busyboxLayer(t)
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "unixecho"), "./testdata/unixecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	hostSock := filepath.Join(dir, "ctl.sock")
	cfg := krun.VMConfig{
		CPUs: 1, MemoryMiB: 64,
		Root:          root,
		Net:           krun.Net{Mode: krun.NetNone},
		VsockPorts:    []krun.VsockPort{{Port: 1024, Path: hostSock, Listen: true}},
		ExecPath:      "/bin/unixecho",
		Argv:          []string{"/.sbx/ctl/vsock-1024.sock"},
		Env:           []string{},
		ConsoleOutput: filepath.Join(dir, "console.log"),
	}
	_, _, err := spawnStandin(t, context.Background(), variantUpstream, cfg, "KRUN_STANDIN_RUN=1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(cfg.ConsoleOutput); return strings.Contains(string(b), "listening") })
	c, err := net.Dial("unix", hostSock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Errorf("reply %q, %v", line, err)
	}
}
