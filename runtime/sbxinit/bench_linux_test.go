package sbxinit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkInitStartup measures the init's start-up, from its exec to its payload's exec.
// The payload is a static C program printing CLOCK_MONOTONIC as it starts. Each iteration
// runs it twice as PID 1 of fresh PID, mount, UTS, IPC and network namespaces over the same
// root: once directly and once through the init, with a realistic config (proc, a minimal
// /dev, a tmpfs, host name, lo, /etc files, an rlimit, a named user, the control socket,
// /.sbx hidden; the control socket listens after the payload started). The difference of the two start-to-payload times is init-ms/op; ns/op is
// the whole run through the init, its exit and the namespaces' teardown included.
func BenchmarkInitStartup(b *testing.B) {
	needRoot(b)
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("needs gcc for the payload: make deps")
	}
	root := newRoot(b, true)
	cmd := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(root, "bin/monotonic"), "testdata/monotonic.c")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v\n%s", err, out)
	}
	cfg := baseConfig("/bin/monotonic")
	cfg.Process.User = User{Spec: "app"}
	cfg.Rlimits = []Rlimit{{Name: "NOFILE", Resource: syscall.RLIMIT_NOFILE, Soft: 1024, Hard: 4096}}
	if err := WriteConfig(root, cfg); err != nil {
		b.Fatal(err)
	}
	// startToPayload runs cmd and returns the time from just before its start to the
	// payload's first instruction (near enough).
	startToPayload := func(cmd *exec.Cmd) time.Duration {
		var t0 unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &t0)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
		t1, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatalf("payload output %q: %v", out, err)
		}
		return time.Duration(t1 - t0.Nano())
	}
	var direct, viaInit time.Duration
	for b.Loop() {
		b.StopTimer()
		d := initCmd(root)
		d.Path, d.Args = "/bin/monotonic", []string{"monotonic"}
		direct += startToPayload(d)
		b.StartTimer()
		viaInit += startToPayload(initCmd(root))
	}
	n := float64(b.N)
	b.ReportMetric(float64(viaInit-direct)/n/1e6, "init-ms/op")
	b.ReportMetric(float64(direct)/n/1e6, "clone-to-payload-ms/op")
	_ = os.Remove(filepath.Join(root, "bin/monotonic"))
}

// BenchmarkExecTrue measures one exec of busybox true through the control socket, over a
// connection already open: the part of `sbx exec SANDBOX -- true` inside the sandbox.
func BenchmarkExecTrue(b *testing.B) {
	needRoot(b)
	root := newRoot(b, true)
	s := start(b, root, baseConfig("sleep", "600"), nil)
	c := s.client(b)
	ctx := context.Background()
	for b.Loop() {
		if code, err := c.Exec(ctx, ExecRequest{Argv: []string{"true"}}, nil, nil, nil); err != nil || code != 0 {
			b.Fatalf("exec: %d %v", code, err)
		}
	}
}
