// Package drivertest is the conformance suite of sandbox drivers: Run checks that a
// runtime.Driver keeps the contract written on that interface, with real payloads. Every
// driver's tests call it (as Terraform's statemgr.TestFull checks every state manager).
package drivertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// Harness is what the suite needs of a driver's test.
type Harness struct {
	// NewDriver returns a driver; the suite calls it once per test, and in the owner process
	// of the crash-recovery test.
	NewDriver func() runtime.Driver
	// Spec returns a runnable spec of a sandbox named name (unique per call) whose payload is
	// argv, run by a POSIX shell image with busybox's applets (sh, sleep, httpd, echo, kill).
	// It has no ports and no mounts; its network lets DialGuest reach the payload.
	Spec func(t *testing.T, name string, argv ...string) *spec.RunSpec
	// Leftovers lists what of s remains on the host (processes, cgroups, links, rules,
	// mounts, files): empty once an instance is closed or Cleanup ran.
	Leftovers func(s *spec.RunSpec) []string
}

// ownerEnv carries the spec to the owner process of the crash-recovery test.
const ownerEnv = "SBX_DRIVERTEST_OWNER"

// RunOwner must be called first thing in the TestMain of a test binary that calls Run: in the
// owner process it starts the spec it was given and blocks until killed.
func RunOwner(newDriver func() runtime.Driver) {
	data := os.Getenv(ownerEnv)
	if data == "" {
		return
	}
	var s spec.RunSpec
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		fmt.Fprintln(os.Stderr, "owner:", err)
		os.Exit(2)
	}
	if _, err := newDriver().Start(context.Background(), &s, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "owner:", err)
		os.Exit(2)
	}
	fmt.Println("owner: started")
	select {}
}

// Run runs the conformance suite against the harness's driver.
func Run(t *testing.T, h Harness) {
	t.Run("CheckHost", func(t *testing.T) {
		if err := h.NewDriver().CheckHost(context.Background()); err != nil {
			t.Fatalf("CheckHost on a host that runs the suite: %v", err)
		}
	})
	t.Run("Validate", func(t *testing.T) { testValidate(t, h) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("ExitCode", func(t *testing.T) { testExitCode(t, h) })
	t.Run("KilledBySignal", func(t *testing.T) { testKilled(t, h) })
	t.Run("CloseKills", func(t *testing.T) { testCloseKills(t, h) })
	t.Run("StartFailureLeavesNothing", func(t *testing.T) { testStartFailure(t, h) })
	t.Run("CleanupAfterOwnerDied", func(t *testing.T) { testCleanup(t, h) })
}

func testValidate(t *testing.T, h Harness) {
	d := h.NewDriver()
	s := h.Spec(t, "valid", "true")
	if err := d.Validate(context.Background(), s); err != nil {
		t.Fatalf("a runnable spec: %v", err)
	}
	missing := *s
	missing.Mounts = []spec.Mount{{Source: filepath.Join(t.TempDir(), "nope"), Target: "/data"}}
	if err := d.Validate(context.Background(), &missing); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing mount source: err = %v, want one naming it", err)
	}
	old := *s
	old.Version = spec.Version - 1
	if err := d.Validate(context.Background(), &old); err == nil {
		t.Error("a run spec of another version was accepted")
	}
	if left := h.Leftovers(s); len(left) > 0 {
		t.Errorf("Validate made something: %q", left)
	}
}

// console is a concurrency-safe console buffer.
type console struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

func (c *console) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(c.String(), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the console never showed %q:\n%s", s, c.String())
}

// start starts s and registers its Close.
func start(t *testing.T, d runtime.Driver, s *spec.RunSpec, out io.Writer) runtime.Instance {
	t.Helper()
	inst, err := d.Start(context.Background(), s, out)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = inst.Close(context.Background()) })
	return inst
}

func wait(t *testing.T, inst runtime.Instance) runtime.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := inst.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return ex
}

func testLifecycle(t *testing.T, h Harness) {
	d := h.NewDriver()
	const port = 7777
	s := h.Spec(t, "life", "sh", "-c",
		fmt.Sprintf(`trap 'echo got-term; exit 7' TERM; httpd -f -p %d -h / & echo console-ok; wait`, port))
	var out console
	inst := start(t, d, s, &out)
	if inst.Pid() <= 0 {
		t.Errorf("Pid = %d", inst.Pid())
	}
	out.wait(t, "console-ok")

	// The guest port, reached directly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := inst.DialGuest(ctx, port)
		cancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DialGuest(%d): %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Wait honours its context and leaves the payload running.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if _, err := inst.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expired context: err = %v", err)
	}
	cancel()

	if err := inst.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal(SIGTERM): %v", err)
	}
	ex := wait(t, inst)
	if ex.Code != 7 || ex.Signal != "" || ex.Err != "" {
		t.Errorf("exit after SIGTERM = %+v, want code 7 from the payload's trap", ex)
	}
	out.wait(t, "got-term")
	if ex2 := wait(t, inst); ex2.Code != ex.Code {
		t.Errorf("a second Wait says %+v, the first %+v", ex2, ex)
	}
	if err := inst.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the payload ended: err = %v, want os.ErrProcessDone", err)
	}
	if err := inst.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := inst.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if left := h.Leftovers(s); len(left) > 0 {
		t.Errorf("left after Close: %q", left)
	}
}

func testExitCode(t *testing.T, h Harness) {
	s := h.Spec(t, "code", "sh", "-c", "echo bye; exit 3")
	var out console
	inst := start(t, h.NewDriver(), s, &out)
	if ex := wait(t, inst); ex.Code != 3 || ex.Signal != "" || !ex.Failed() {
		t.Errorf("exit = %+v, want code 3", ex)
	}
	out.wait(t, "bye")
}

func testKilled(t *testing.T, h Harness) {
	s := h.Spec(t, "killed", "sh", "-c", "echo up; exec sleep 1000")
	var out console
	inst := start(t, h.NewDriver(), s, &out)
	out.wait(t, "up")
	if err := inst.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex := wait(t, inst); ex.Signal != "SIGKILL" || !ex.Failed() {
		t.Errorf("exit = %+v, want killed by SIGKILL", ex)
	}
}

func testCloseKills(t *testing.T, h Harness) {
	s := h.Spec(t, "closed", "sh", "-c", "trap '' TERM; echo up; while :; do sleep 1; done")
	var out console
	inst := start(t, h.NewDriver(), s, &out)
	out.wait(t, "up")
	pid := inst.Pid()
	if err := inst.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	if left := h.Leftovers(s); len(left) > 0 {
		t.Errorf("left after Close: %q", left)
	}
}

func testStartFailure(t *testing.T, h Harness) {
	s := h.Spec(t, "broken", "/no/such/program")
	var out console
	inst, err := h.NewDriver().Start(context.Background(), s, &out)
	if err == nil {
		_ = inst.Close(context.Background())
		t.Fatal("Start of a missing program succeeded; it must fail in Start, not as an exit")
	}
	if !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("the error does not name the program: %v", err)
	}
	if left := h.Leftovers(s); len(left) > 0 {
		t.Errorf("left after a failed Start: %q", left)
	}
}

func testCleanup(t *testing.T, h Harness) {
	s := h.Spec(t, "orphan", "sh", "-c", "echo up; exec sleep 1000")
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ownerEnv+"="+string(data))
	var out console
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.wait(t, "owner: started")
	out.wait(t, "up")
	// The owner dies without closing its instance, as a supervisor killed with -9.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := h.NewDriver().Cleanup(context.Background(), s); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if left := h.Leftovers(s); len(left) > 0 {
		t.Errorf("left after Cleanup: %q", left)
	}
	if err := h.NewDriver().Cleanup(context.Background(), s); err != nil {
		t.Errorf("a second Cleanup: %v", err)
	}
}
