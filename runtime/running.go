package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/runtime/diskfile"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
	"golang.org/x/sys/unix"
)

// Every supervisor also registers its sandbox outside the project, in a directory on tmpfs
// (/run/sbx/running for root), keyed by the project's directory. So a sandbox whose .sbx/
// was deleted while it ran is still found: up refuses to start a second copy over the same
// writable layer, and down stops it. Entries go at reboot, as the sandboxes do.

// Running is a live sandbox as its registry entry describes it.
type Running struct {
	Name      string        `json:"name"`
	Pid       int           `json:"pid"` // the supervisor
	StartTime uint64        `json:"start_time"`
	Spec      *spec.RunSpec `json:"spec"`
}

// runningRoot is where entries live: /run/sbx/running for root, else under the user's
// runtime directory.
func runningRoot() string {
	if d := os.Getenv("SBX_RUN_DIR"); d != "" {
		return filepath.Join(d, "running")
	}
	if os.Geteuid() == 0 {
		return "/run/sbx/running"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "sbx", "running")
	}
	return filepath.Join(os.TempDir(), "sbx-"+strconv.Itoa(os.Geteuid()), "running")
}

// projectKey names a project's registry directory: a hash of its directory, so two projects
// of the same name never meet.
func projectKey(dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return hex.EncodeToString(sum[:8])
}

// projectDirOf is the project directory of a run spec: Dir is <project>/.sbx/sandboxes/<name>.
func projectDirOf(s *spec.RunSpec) string {
	return filepath.Dir(filepath.Dir(filepath.Dir(s.Dir)))
}

func runningPath(projectDir, name string) string {
	return filepath.Join(runningRoot(), projectKey(projectDir), name+".json")
}

// register records the supervisor of s (this process) as running.
func register(projectDir string, s *spec.RunSpec, pid int, start uint64) error {
	dir := filepath.Dir(runningPath(projectDir, s.Name))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("register %s as running: %w", s.Name, err)
	}
	b, err := json.Marshal(Running{Name: s.Name, Pid: pid, StartTime: start, Spec: s})
	if err != nil {
		return fmt.Errorf("register %s as running: %w", s.Name, err)
	}
	return diskfile.WriteAtomic(runningPath(projectDir, s.Name), b, 0o600)
}

// unregister removes the entry of name if it is still this supervisor's.
func unregister(projectDir, name string, pid int) {
	path := runningPath(projectDir, name)
	if r, err := readRunning(path); err == nil && r.Pid == pid {
		_ = os.Remove(path)
	}
}

func readRunning(path string) (*Running, error) {
	b, err := state.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Running
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &r, nil
}

// Running lists the live sandboxes of the project, whatever its .sbx/ says; entries of
// supervisors that are gone are removed.
func (p *Project) Running() []*Running {
	dir := filepath.Join(runningRoot(), projectKey(p.Dir))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []*Running
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r, err := readRunning(path)
		if err != nil {
			continue
		}
		if !state.Alive(r.Pid, r.StartTime) {
			_ = os.Remove(path)
			continue
		}
		out = append(out, r)
	}
	return out
}

// runningElsewhere says whether name runs under a supervisor other than pid (the one the
// state knows, 0 for none): a copy the state lost track of.
func (p *Project) runningElsewhere(name string, pid int) *Running {
	r, err := readRunning(runningPath(p.Dir, name))
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return nil
	}
	if r.Pid == pid || !state.Alive(r.Pid, r.StartTime) {
		return nil
	}
	return r
}

// stopUnrecorded stops a sandbox that runs without a record in the state and releases what
// its driver made, from the spec in its registry entry.
func (e *Engine) stopUnrecorded(ctx context.Context, r *Running) error {
	if err := stopSupervisor(ctx, r.Pid, r.StartTime, stopGrace(r.Spec.StopTimeout)); err != nil {
		return err
	}
	d, err := NewDriver(r.Spec.Driver, e.Exe, e.Log)
	if err != nil {
		return fmt.Errorf("clean up after %s: %w", r.Name, err)
	}
	if err := d.Cleanup(ctx, r.Spec); err != nil {
		return fmt.Errorf("clean up after %s: %w", r.Name, err)
	}
	unregister(e.Project.Dir, r.Name, r.Pid)
	return nil
}

// minFree is the free space a start needs where the sandbox's directory lives: its
// supervisor writes records and the console log there.
const minFree = 1 << 20

// checkSpace refuses to start a sandbox on a full disk at once, with the fix, rather than
// leave a supervisor that cannot say anything.
func checkSpace(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown: let the start say what goes wrong
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFree {
		return fmt.Errorf("no space left on the device holding %s (%d bytes free): free some space, then start it again ('sbx stop' and 'sbx down' work meanwhile)", dir, free)
	}
	return nil
}
