package state

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
)

func TestLiveness(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc")
	}
	self := os.Getpid()
	start, err := ProcessStartTime(self)
	if err != nil || start == 0 {
		t.Fatalf("own start time: %d %v", start, err)
	}
	if !Alive(self, start) {
		t.Error("this process is not alive")
	}
	// The same pid with another start time is a recycled pid: not the process we recorded.
	if Alive(self, start+1) {
		t.Error("a recycled pid is alive")
	}
	if Alive(0, start) || Alive(-1, start) || Alive(self, 0) {
		t.Error("no pid is alive")
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("sleep: %v", err)
	}
	pid := cmd.Process.Pid
	cstart, err := ProcessStartTime(pid)
	if err != nil || !Alive(pid, cstart) {
		t.Fatalf("child: %d %v", cstart, err)
	}
	_ = cmd.Process.Kill()
	// Killed but not reaped yet: a zombie, which is not alive.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, zombie, err := procStart(pid)
		if err != nil {
			t.Fatal(err)
		}
		if zombie {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed child never became a zombie")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(pid, cstart) {
		t.Error("a zombie is alive")
	}
	_ = cmd.Wait()
	if Alive(pid, cstart) {
		t.Error("dead child is alive")
	}
	if _, err := ProcessStartTime(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("start time of a reaped child: %v", err)
	}
}

func TestObserveAndPlan(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc")
	}
	self := os.Getpid()
	start, err := ProcessStartTime(self)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("true: %v", err)
	}
	deadPid := cmd.Process.Pid

	st := planner.NewState()
	set := func(name string, pid int, start uint64, status planner.Status) {
		r := record(name)
		r.Pid, r.StartTime, r.Status = pid, start, status
		st.Sandboxes[name] = r
	}
	set("alive", self, start, planner.StatusRunning)
	set("recycled", self, start+1, planner.StatusRunning) // pid now used by another process
	set("gone", deadPid, 1, planner.StatusRunning)
	set("stopped", 0, 0, planner.StatusStopped)
	set("failed", 0, 0, planner.StatusCrashed)
	set("nopid", 0, 0, planner.StatusRunning)
	obs := Observe(st)
	want := planner.Observed{
		"alive": planner.StatusRunning, "recycled": planner.StatusCrashed, "gone": planner.StatusCrashed,
		"stopped": planner.StatusStopped, "failed": planner.StatusCrashed, "nopid": planner.StatusCrashed,
	}
	for n, w := range want {
		if obs[n] != w {
			t.Errorf("%s: %s, want %s", n, obs[n], w)
		}
	}

	// The planner starts what is not running, and says why.
	cfg := &lang.Config{}
	for _, n := range st.Names() {
		cfg.Sandboxes = append(cfg.Sandboxes, &lang.Sandbox{Name: n, Image: "docker.io/library/" + n + ":1", CPUs: 1, MemoryMiB: 512,
			Network: lang.NetworkSpec{Scope: lang.ScopePublic}, Restart: lang.RestartNo, StopTimeout: 10e9})
	}
	p, err := planner.Compute(cfg, st, planner.WithObserved(obs))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, s := range p.Steps {
		if s.Action != planner.ActionStart {
			t.Errorf("%s: %s", s.Sandbox, s.Action)
		}
		reasons[s.Sandbox] = s.Reason
	}
	wantReasons := map[string]string{
		"recycled": "crashed: supervisor pid " + strconv.Itoa(self) + " is gone",
		"gone":     "crashed: supervisor pid " + strconv.Itoa(deadPid) + " is gone",
		"stopped":  "stopped",
		"failed":   "crashed",
		"nopid":    "crashed",
	}
	if len(reasons) != len(wantReasons) {
		t.Errorf("steps %v", reasons)
	}
	for n, w := range wantReasons {
		if reasons[n] != w {
			t.Errorf("%s: %q, want %q", n, reasons[n], w)
		}
	}
}

func TestMachine(t *testing.T) {
	var m Machine
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if !m.PortInUse("127.0.0.1", port, "tcp") {
		t.Error("bound tcp port not in use")
	}
	l.Close()
	if m.PortInUse("127.0.0.1", port, "tcp") {
		t.Error("free tcp port in use")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uport := pc.LocalAddr().(*net.UDPAddr).Port
	if !m.PortInUse("127.0.0.1", uport, "udp") {
		t.Error("bound udp port not in use")
	}
	pc.Close()

	dir := t.TempDir()
	if !m.PathExists(dir) || m.PathExists(filepath.Join(dir, "missing")) {
		t.Error("PathExists")
	}
}
