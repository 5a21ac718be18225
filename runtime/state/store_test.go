package state

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
)

// holdEnv makes the test binary, re-executed, hold the state lock of the named project
// directory until its standard input closes: the second process of the contention tests.
const holdEnv = "SBX_STATE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		l, err := New(dir).Lock(context.Background(), WithCommand("sbx up --watch"), WithTimeout(0))
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = l.Unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func record(name string) *planner.Record {
	sb := &lang.Sandbox{Name: name, Image: "docker.io/library/" + name + ":1", CPUs: 1, MemoryMiB: 512,
		Network: lang.NetworkSpec{Scope: lang.ScopePublic}, Restart: lang.RestartNo, StopTimeout: 10 * time.Second}
	r := planner.NewRecord(sb, nil, "sha256:0123")
	r.Status = planner.StatusRunning
	r.Generation = 1
	return r
}

func lock(t *testing.T, s *Store, opts ...LockOption) *Lock {
	t.Helper()
	l, err := s.Lock(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Unlock() })
	return l
}

func TestReadCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if st.Serial != 0 || st.Lineage != "" || len(st.Sandboxes) != 0 || st.Version != planner.StateVersion {
		t.Errorf("empty state: %+v", st)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read created %s: %v", s.Dir(), err)
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	l := lock(t, s)
	gi, err := os.ReadFile(filepath.Join(dir, ".sbx", ".gitignore"))
	if err != nil || string(gi) != "*\n" {
		t.Fatalf(".gitignore: %q %v", gi, err)
	}
	st, err := l.Read()
	if err != nil {
		t.Fatal(err)
	}
	st.Sandboxes["db"] = record("db")
	if err := l.Write(st); err != nil {
		t.Fatal(err)
	}
	if st.Serial != 1 || len(st.Lineage) != 36 {
		t.Fatalf("after first write: serial %d, lineage %q", st.Serial, st.Lineage)
	}
	lineage := st.Lineage
	st.Sandboxes["api"] = record("api")
	if err := l.Write(st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 2 || got.Lineage != lineage || len(got.Sandboxes) != 2 || got.Sandboxes["db"].ImageDigest != "sha256:0123" {
		t.Errorf("read back: %+v", got)
	}
	// The recorded fingerprints survive the round trip: the same spec plans no change.
	cfg := &lang.Config{Sandboxes: []*lang.Sandbox{{Name: "api", Image: "docker.io/library/api:1", CPUs: 1, MemoryMiB: 512,
		Network: lang.NetworkSpec{Scope: lang.ScopePublic}, Restart: lang.RestartNo, StopTimeout: 10 * time.Second}}}
	p, err := planner.Compute(cfg, got, planner.WithTargets("api"))
	if err != nil || p.HasChanges() {
		t.Errorf("plan after round trip: %v %+v", err, p)
	}
	entries, _ := os.ReadDir(s.Dir())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".gitignore state.json state.lock" {
		t.Errorf("state directory holds %v", names)
	}
}

func TestWriteRefusesStaleState(t *testing.T) {
	s := New(t.TempDir())
	l := lock(t, s)
	a, _ := l.Read()
	b, _ := l.Read()
	if err := l.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(b); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("stale write: %v", err)
	}
	other := planner.NewState()
	other.Lineage, other.Serial = "another-lineage", 1
	if err := l.Write(other); !errors.Is(err, ErrStateChanged) || !strings.Contains(err.Error(), "lineage") {
		t.Fatalf("other lineage: %v", err)
	}
	_ = l.Unlock()
	if err := l.Write(a); err == nil {
		t.Fatal("write after unlock")
	}
}

func TestUnreadableStateIsNeverOverwritten(t *testing.T) {
	cases := []struct {
		name, content string
		check         func(error) bool
		msg           string
	}{
		{"corrupt", `{"version": 1, "serial": `, func(err error) bool { var e *CorruptError; return errors.As(err, &e) }, "is unreadable"},
		{"not json", "hello", func(err error) bool { var e *CorruptError; return errors.As(err, &e) }, "is unreadable"},
		{"no version", `{"serial": 3}`, func(err error) bool { var e *CorruptError; return errors.As(err, &e) }, "no version"},
		{"bad record", `{"version": 1, "sandboxes": {"db": null}}`, func(err error) bool { var e *CorruptError; return errors.As(err, &e) }, "null record"},
		{"newer", `{"version": 3, "lineage": "x", "serial": 9, "sandboxes": {}, "new_thing": true}`,
			func(err error) bool { var e *VersionError; return errors.As(err, &e) && e.Version == 3 }, "has version 3, newer than this sbx reads (2); upgrade sbx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t.TempDir())
			if err := os.MkdirAll(s.Dir(), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.StatePath(), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := s.Read()
			if !tc.check(err) || !strings.Contains(err.Error(), s.StatePath()) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("read: %v", err)
			}
			l := lock(t, s)
			if err := l.Write(planner.NewState()); !tc.check(err) {
				t.Fatalf("write: %v", err)
			}
			if b, _ := os.ReadFile(s.StatePath()); string(b) != tc.content {
				t.Fatalf("the state file was changed: %s", b)
			}
		})
	}
}

func TestCrashLeftovers(t *testing.T) {
	s := New(t.TempDir())
	l := lock(t, s)
	st, _ := l.Read()
	st.Sandboxes["db"] = record("db")
	if err := l.Write(st); err != nil {
		t.Fatal(err)
	}
	_ = l.Unlock()
	// A writer that crashed between creating its temporary file and the rename.
	leftover := filepath.Join(s.Dir(), ".state.json.tmp-4242")
	if err := os.WriteFile(leftover, []byte(`{"version": 1, "serial": 99, "sand`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read()
	if err != nil || got.Serial != 1 || got.Sandboxes["db"] == nil {
		t.Fatalf("read with a leftover: %v %+v", err, got)
	}
	lock(t, s)
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover not cleaned: %v", err)
	}
}

func TestStaleLockFile(t *testing.T) {
	s := New(t.TempDir())
	if err := os.MkdirAll(s.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	// Left by an sbx that was killed: the file is there, the flock died with its process.
	if err := os.WriteFile(s.LockPath(), []byte(`{"pid":999999,"command":"sbx up","since":"2020-01-01T00:00:00Z"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := lock(t, s, WithTimeout(0), WithCommand("sbx plan")) // no wait at all
	b, _ := os.ReadFile(s.LockPath())
	if !strings.Contains(string(b), `"command":"sbx plan"`) || l.Info().Pid != os.Getpid() {
		t.Errorf("lock file says %s", b)
	}
}

// holdLock starts a second process that holds the lock of dir until its stdin closes.
func holdLock(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder: %q %v", line, err)
	}
	return cmd, stdin
}

func TestLockContentionNamesHolder(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	cmd, stdin := holdLock(t, dir)

	start := time.Now()
	_, err := s.Lock(context.Background(), WithTimeout(300*time.Millisecond))
	waited := time.Since(start)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("contended lock: %v", err)
	}
	if le.Holder.Pid != cmd.Process.Pid || le.Holder.Command != "sbx up --watch" {
		t.Errorf("holder %+v, want pid %d", le.Holder, cmd.Process.Pid)
	}
	if waited < 300*time.Millisecond {
		t.Errorf("gave up after %s", waited)
	}
	want := "state is locked by pid " + strconv.Itoa(cmd.Process.Pid) + " (sbx up --watch) since "
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "gave up after 300ms; wait for that command to finish, or raise --lock-timeout") {
		t.Errorf("message: %v", err)
	}

	// Cancellation ends the wait too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLocked) {
		t.Errorf("cancelled lock: %v", err)
	}

	// A waiter gets the lock as soon as the holder lets go.
	go func() {
		time.Sleep(200 * time.Millisecond)
		stdin.Close()
	}()
	l, err := s.Lock(context.Background(), WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Unlock()
}

func TestLockHolderKilled(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	cmd, _ := holdLock(t, dir)
	if _, err := s.Lock(context.Background(), WithTimeout(0)); !errors.Is(err, ErrLocked) {
		t.Fatalf("held lock: %v", err)
	}
	// kill -9: the lock file keeps the dead holder's pid, but its flock is gone.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if b, _ := os.ReadFile(s.LockPath()); !strings.Contains(string(b), `"pid":`+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("lock file: %s", b)
	}
	lock(t, s, WithTimeout(0))
}

func TestLockIsPerOpenFile(t *testing.T) {
	s := New(t.TempDir())
	l := lock(t, s)
	// Same process, another open file description: excluded as another process would be.
	if _, err := s.Lock(context.Background(), WithTimeout(0)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock in the same process: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	lock(t, s, WithTimeout(0))
}

// A version 1 state (records holding lang's Sandbox as their spec) is read and converted:
// the plan keeps its old values, and the next write is version 2.
func TestReadVersion1(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if err := os.MkdirAll(s.Dir(), 0o700); err != nil {
		t.Fatal(err)
	}
	v1 := `{"version": 1, "lineage": "L", "serial": 4, "sandboxes": {"db": {
	  "name": "db",
	  "spec": {"name": "db", "image": "postgres:16", "env": {"PGUSER": "app"},
	           "ports": [{"host_ip": "127.0.0.1", "host": 5432, "guest": 5432, "protocol": "tcp"}],
	           "network": {"scope": "group", "group": "default", "ip": "10.89.0.2", "ip_allocated": true}},
	  "fingerprints": {"image": "x"}, "status": "running", "pid": 1, "generation": 2}}}`
	if err := os.WriteFile(s.StatePath(), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	r := st.Sandboxes["db"]
	if r == nil || r.Spec.Image != "postgres:16" || len(r.Spec.Ports) != 1 || r.Spec.Ports[0].Host != 5432 ||
		string(r.Spec.Fields["env.PGUSER"]) != `"app"` || r.Generation != 2 || st.Serial != 4 {
		t.Fatalf("converted record: %+v", r)
	}
	if ips := st.AllocatedIPs(); ips["db"].String() != "10.89.0.2" {
		t.Errorf("allocated IPs after conversion: %v", ips)
	}
	l := lock(t, s)
	if err := l.Write(st); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.StatePath())
	if !strings.Contains(string(b), `"version": 2`) {
		t.Errorf("rewritten state:\n%s", b)
	}
}
