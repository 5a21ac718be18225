package planner

import (
	"cmp"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/lang"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/planner/golden")

const goldenDir = "../testdata/planner/golden"

// golden compares got with the golden file name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test ./planner -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// sandbox returns a sandbox with lang's defaults, changed by mods.
func sandbox(name string, mods ...func(*lang.Sandbox)) *lang.Sandbox {
	s := &lang.Sandbox{
		Name:        name,
		Image:       "docker.io/library/" + name + ":1",
		CPUs:        1,
		MemoryMiB:   512,
		Network:     lang.NetworkSpec{Scope: lang.ScopePublic},
		Restart:     lang.RestartNo,
		StopTimeout: 10 * time.Second,
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func env(kv ...string) func(*lang.Sandbox) {
	return func(s *lang.Sandbox) {
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Env[kv[i]] = kv[i+1]
		}
	}
}

func dependsOn(names ...string) func(*lang.Sandbox) {
	return func(s *lang.Sandbox) { s.DependsOn = names }
}

func inGroup(group, ip string) func(*lang.Sandbox) {
	return func(s *lang.Sandbox) {
		s.Network = lang.NetworkSpec{Scope: lang.ScopeGroup, Group: group, IP: netip.MustParseAddr(ip)}
	}
}

func port(host, guest int) func(*lang.Sandbox) {
	return func(s *lang.Sandbox) {
		s.Ports = append(s.Ports, lang.Port{HostIP: "127.0.0.1", Host: host, Guest: guest, Protocol: "tcp"})
	}
}

func mount(src, dst string) func(*lang.Sandbox) {
	return func(s *lang.Sandbox) { s.Mounts = append(s.Mounts, lang.Mount{Source: src, Target: dst}) }
}

// config builds a lang.Config as lang.Load would: sandboxes sorted, an edge per depends_on
// entry, plus the reference edges given as "from->to".
func config(sbs []*lang.Sandbox, refs ...[2]string) *lang.Config {
	c := &lang.Config{
		File:     "/project/Sandboxfile",
		Dir:      "/project",
		Project:  lang.Project{Name: "project"},
		Networks: []*lang.Network{{Name: "backend", Subnet: netip.MustParsePrefix("10.88.0.0/24")}},
	}
	c.Sandboxes = slices.Clone(sbs)
	slices.SortFunc(c.Sandboxes, func(a, b *lang.Sandbox) int { return cmp.Compare(a.Name, b.Name) })
	for _, s := range c.Sandboxes {
		for _, d := range s.DependsOn {
			c.Edges = append(c.Edges, lang.Edge{From: s.Name, To: d, Origin: lang.OriginDependsOn})
		}
	}
	for _, r := range refs {
		c.Edges = append(c.Edges, lang.Edge{From: r[0], To: r[1], Origin: lang.OriginReference})
	}
	slices.SortFunc(c.Edges, func(a, b lang.Edge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Origin, b.Origin))
	})
	return c
}

// applied returns the state after cfg was applied: every sandbox running, with a pid.
func applied(cfg *lang.Config, digests map[string]string) *State {
	st := NewState()
	st.Lineage = "0b5a57e1-0000-4000-8000-000000000001"
	st.Serial = 7
	for i, s := range cfg.Sandboxes {
		r := NewRecord(s, cfg.Dependencies(s.Name), digests[s.Image])
		r.Pid = 4000 + i
		r.StartTime = 123456
		r.Status = StatusRunning
		r.Generation = 1
		st.Sandboxes[s.Name] = r
	}
	return st
}

// fakeMachine is the planner's boundary to the host, with answers set by the test; it records
// the questions so a test can check they are the expected ones.
type fakeMachine struct {
	busy    map[string]bool // "127.0.0.1:5432/tcp"
	missing map[string]bool // paths
	asked   []string
}

func (m *fakeMachine) PortInUse(hostIP string, port int, proto string) bool {
	k := joinHostPort(hostIP, port) + "/" + proto
	m.asked = append(m.asked, "port "+k)
	return m.busy[k]
}

func (m *fakeMachine) PathExists(path string) bool {
	m.asked = append(m.asked, "path "+path)
	return !m.missing[path]
}
