package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/lang"
)

// project is the Sandboxfile most cases start from:
//
//	cache ← db ← api ← web, and worker (alone).
func project(mods map[string][]func(*lang.Sandbox)) *lang.Config {
	sbs := []*lang.Sandbox{
		sandbox("cache", port(6379, 6379)),
		sandbox("db", inGroup("backend", "10.88.0.10"), env("POSTGRES_PASSWORD", "dev"), port(5432, 5432),
			mount("/project/.data/pg", "/var/lib/postgresql/data"), dependsOn("cache")),
		sandbox("api", inGroup("backend", "10.88.0.11"), env("DATABASE_URL", "postgres://postgres:dev@10.88.0.10:5432/postgres"),
			func(s *lang.Sandbox) { s.Watch = &lang.Watch{Paths: []string{"/project/src"}} }),
		sandbox("web", dependsOn("api"), port(8080, 80)),
		sandbox("worker", func(s *lang.Sandbox) { s.Command = []string{"worker", "--queue", "default"} }),
	}
	for _, s := range sbs {
		for _, m := range mods[s.Name] {
			m(s)
		}
	}
	return config(sbs, [2]string{"api", "db"})
}

func TestPlanGolden(t *testing.T) {
	base := project(nil)
	baseState := applied(base, map[string]string{"docker.io/library/db:1": "sha256:aaaa"})
	withOrphans := func() *State {
		st := applied(base, nil)
		old := applied(config([]*lang.Sandbox{sandbox("queue"), sandbox("mailer", dependsOn("queue"))}), nil)
		for n, r := range old.Sandboxes {
			st.Sandboxes[n] = r
		}
		st.Sandboxes["queue"].Status = StatusStopped
		return st
	}

	cases := []struct {
		name  string
		cfg   *lang.Config
		state *State
		opts  []Option
		color bool
	}{
		{name: "create_all", cfg: base, state: nil,
			opts: []Option{WithDigests(map[string]string{"docker.io/library/db:1": "sha256:aaaa"})}},
		{name: "no_changes", cfg: base, state: baseState,
			opts: []Option{WithDigests(map[string]string{"docker.io/library/db:1": "sha256:aaaa"}), WithObserved(allStatus(baseState, StatusRunning))}},
		{name: "env_change_one", state: baseState,
			cfg: project(map[string][]func(*lang.Sandbox){"worker": {env("LOG", "debug")}})},
		{name: "dependent_interpolates_ip", state: baseState,
			cfg: project(map[string][]func(*lang.Sandbox){
				"db":  {inGroup("backend", "10.88.0.20")},
				"api": {env("DATABASE_URL", "postgres://postgres:dev@10.88.0.20:5432/postgres")},
			})},
		{name: "orphans", cfg: base, state: withOrphans()},
		{name: "start_stopped_crashed", cfg: base, state: baseState,
			opts: []Option{WithObserved(Observed{"cache": StatusCrashed, "worker": StatusStopped, "db": StatusRunning})}},
		{name: "crashed_recorded", cfg: base, state: func() *State {
			st := applied(base, nil)
			st.Sandboxes["worker"].Status = StatusCrashed
			st.Sandboxes["worker"].Pid = 0
			return st
		}()},
		{name: "replace_crashed", state: baseState,
			cfg:  project(map[string][]func(*lang.Sandbox){"cache": {func(s *lang.Sandbox) { s.MemoryMiB = 1024 }}}),
			opts: []Option{WithObserved(Observed{"cache": StatusCrashed})}},
		{name: "image_digest", cfg: base, state: baseState,
			opts: []Option{WithDigests(map[string]string{"docker.io/library/db:1": "sha256:bbbb", "docker.io/library/web:1": "sha256:cccc"})}},
		{name: "image_and_fields", state: baseState,
			cfg: project(map[string][]func(*lang.Sandbox){"db": {
				func(s *lang.Sandbox) {
					s.Image = "docker.io/library/postgres:17"
					s.Command = []string{"postgres", "-c", "fsync=off"}
				},
				func(s *lang.Sandbox) {
					s.Ports = s.Ports[:0]
					s.Mounts = append(s.Mounts, lang.Mount{Source: "/project/init", Target: "/docker-entrypoint-initdb.d", ReadOnly: true})
				},
				func(s *lang.Sandbox) {
					s.Rlimits = []lang.Rlimit{{Resource: "NOFILE", Number: 7, Soft: 1024, Hard: 4096}}
				},
			}})},
		{name: "sensitive", state: func() *State {
			c := project(map[string][]func(*lang.Sandbox){"db": {func(s *lang.Sandbox) { s.Sensitive = []string{"env.POSTGRES_PASSWORD"} }}})
			return applied(c, nil)
		}(),
			cfg: project(map[string][]func(*lang.Sandbox){"db": {env("POSTGRES_PASSWORD", "s3cret", "POSTGRES_USER", "app"),
				func(s *lang.Sandbox) { s.Sensitive = []string{"env.POSTGRES_PASSWORD"} }}})},
		{name: "sensitive_only_old", state: func() *State {
			c := project(map[string][]func(*lang.Sandbox){"db": {func(s *lang.Sandbox) { s.Sensitive = []string{"env.POSTGRES_PASSWORD"} }}})
			return applied(c, nil)
		}(),
			cfg: project(map[string][]func(*lang.Sandbox){"db": {env("POSTGRES_PASSWORD", "now-public")}})},
		{name: "watch_update", state: baseState,
			cfg: project(map[string][]func(*lang.Sandbox){"api": {func(s *lang.Sandbox) {
				s.Watch = &lang.Watch{Paths: []string{"/project/src", "/project/templates"}, Ignore: []string{"**/*.tmp"}}
			}}})},
		{name: "targets", state: withOrphans(), opts: []Option{WithTargets("api")},
			cfg: project(map[string][]func(*lang.Sandbox){"db": {env("A", "1")}, "worker": {env("A", "1")}, "web": {env("A", "1")}})},
		{name: "targets_no_deps", cfg: base, state: nil, opts: []Option{WithTargets("web", "api"), WithNoDeps(true)}},
		{name: "target_orphan", cfg: base, state: withOrphans(), opts: []Option{WithTargets("mailer")}},
		{name: "problems", state: applied(base, nil),
			cfg: project(map[string][]func(*lang.Sandbox){
				"db":     {env("X", "1"), port(6379, 6380)},                                  // replaced; port clashes with cache's
				"web":    {env("X", "1"), mount("/project/missing", "/data")},                // replaced; mount source missing
				"api":    {env("X", "1"), inGroup("backend", "10.99.0.1"), port(9000, 9000)}, // outside the subnet; port busy
				"worker": {env("X", "1"), inGroup("backend", "10.88.0.10")},                  // duplicate IP
				"cache":  {env("X", "1")},                                                    // replaced; 6379 is its own
			}),
			opts: []Option{WithMachine(&fakeMachine{
				busy:    map[string]bool{"127.0.0.1:9000/tcp": true, "127.0.0.1:6379/tcp": true},
				missing: map[string]bool{"/project/missing": true},
			})}},
		{name: "mixed_color", color: true, state: withOrphans(),
			cfg: project(map[string][]func(*lang.Sandbox){
				"db":  {env("POSTGRES_PASSWORD", "new")},
				"api": {func(s *lang.Sandbox) { s.Watch = nil }},
			}),
			opts: []Option{WithObserved(Observed{"worker": StatusCrashed})}},
	}
	// A new sandbox for mixed_color, so every action is in it.
	cases[len(cases)-1].cfg.Sandboxes = append(cases[len(cases)-1].cfg.Sandboxes, sandbox("search"))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute(tc.cfg, tc.state, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var txt bytes.Buffer
			if err := p.Render(&txt, tc.color); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", txt.Bytes())
			var js bytes.Buffer
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", js.Bytes())
			checkPlanInvariants(t, p)
		})
	}
}

// allStatus is the test's stand-in for runtime/state.Observe: every record has status s.
func allStatus(st *State, s Status) Observed {
	obs := Observed{}
	for n := range st.Sandboxes {
		obs[n] = s
	}
	return obs
}

// checkPlanInvariants checks what every plan must satisfy: each step after the steps it
// depends on, destroys first, no secret in the JSON.
func checkPlanInvariants(t *testing.T, p *Plan) {
	t.Helper()
	pos := map[string]int{}
	seenOther := false
	for i, s := range p.Steps {
		if _, dup := pos[s.Sandbox]; dup {
			t.Errorf("two steps for %s", s.Sandbox)
		}
		pos[s.Sandbox] = i
		for _, d := range s.DependsOn {
			if j, ok := pos[d]; !ok || j >= i {
				t.Errorf("step %s depends on %s, which is not before it", s.Sandbox, d)
			}
		}
		if s.Action == ActionDestroy && seenOther {
			t.Errorf("destroy of %s after a non-destroy step", s.Sandbox)
		}
		seenOther = seenOther || s.Action != ActionDestroy
	}
	var js bytes.Buffer
	_ = p.WriteJSON(&js)
	var txt bytes.Buffer
	_ = p.Render(&txt, false)
	for _, secret := range []string{"s3cret"} {
		if strings.Contains(js.String()+txt.String(), secret) {
			t.Errorf("a sensitive value is in the plan")
		}
	}
}

func TestPlanTwiceNoChanges(t *testing.T) {
	cfg := project(nil)
	p, err := Compute(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Summary(); got != (Summary{Create: 5}) {
		t.Fatalf("summary %+v", got)
	}
	// Apply, as the runtime would, then plan again from a freshly loaded config.
	st := applied(cfg, nil)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := NewState()
	if err := json.Unmarshal(b, reloaded); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		p, err = Compute(project(nil), reloaded)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasChanges() || p.ExitCode() != 0 {
			t.Fatalf("second plan has changes: %+v", p.Steps)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	cfg := project(nil)
	cases := []struct {
		name string
		cfg  *lang.Config
		opts []Option
		want string
		is   any
	}{
		{"unknown target suggests", cfg, []Option{WithTargets("apii")},
			`plan: unknown sandbox "apii" (did you mean "api"?)`, &UnknownSandboxError{}},
		{"unknown target far", cfg, []Option{WithTargets("zzzzzz")},
			`plan: unknown sandbox "zzzzzz": sbx plan lists the sandboxes of the Sandboxfile`, &UnknownSandboxError{}},
		{"cycle", config([]*lang.Sandbox{sandbox("a", dependsOn("c")), sandbox("b", dependsOn("a")), sandbox("c", dependsOn("b")), sandbox("d", dependsOn("a"))}), nil,
			"plan: dependency cycle: a → c → b → a; remove one of these depends_on entries or references", &CycleError{}},
		{"self cycle", config([]*lang.Sandbox{sandbox("a", dependsOn("a"))}), nil,
			"plan: dependency cycle: a → a; remove one of these depends_on entries or references", &CycleError{}},
		{"edge to unknown", config([]*lang.Sandbox{sandbox("a", dependsOn("nope"))}), nil,
			`plan: sandbox "a" depends on unknown sandbox "nope"`, nil},
		{"empty target", cfg, []Option{WithTargets("")}, "plan: empty target name", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compute(tc.cfg, nil, tc.opts...)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
			golden(t, "error_"+strings.ReplaceAll(tc.name, " ", "_")+".txt", []byte(err.Error()+"\n"))
			switch want := tc.is.(type) {
			case *UnknownSandboxError:
				if !errors.As(err, &want) {
					t.Errorf("not an UnknownSandboxError: %T", err)
				}
			case *CycleError:
				if !errors.As(err, &want) {
					t.Errorf("not a CycleError: %T", err)
				}
			}
		})
	}
}

func TestChangeOneSandboxEnvReplacesOnlyIt(t *testing.T) {
	base := project(nil)
	st := applied(base, nil)
	for _, name := range []string{"cache", "db", "api", "web", "worker"} {
		cfg := project(map[string][]func(*lang.Sandbox){name: {env("NEW", "1")}})
		p, err := Compute(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Steps) != 1 || p.Steps[0].Sandbox != name || p.Steps[0].Action != ActionReplace {
			t.Errorf("%s: steps %+v", name, p.Steps)
		}
		if len(p.Steps[0].Changes) != 1 || p.Steps[0].Changes[0].Field != "env.NEW" {
			t.Errorf("%s: changes %+v", name, p.Steps[0].Changes)
		}
	}
}

func TestStaleAndExitCode(t *testing.T) {
	st := applied(project(nil), nil)
	p, err := Compute(project(nil), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stale(st); err != nil {
		t.Fatal(err)
	}
	st.Serial++
	if err := p.Stale(st); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("stale: %v", err)
	}
	if p.ExitCode() != 0 {
		t.Fatal("exit code")
	}
	p2, _ := Compute(project(nil), nil)
	if p2.ExitCode() != 2 {
		t.Fatal("exit code with changes")
	}
	if p2.Err() != nil {
		t.Fatal(p2.Err())
	}
}

func TestComputeIsPure(t *testing.T) {
	cfg := project(map[string][]func(*lang.Sandbox){"db": {env("POSTGRES_PASSWORD", "x")}})
	st := applied(project(nil), nil)
	before, _ := json.Marshal(st)
	cfgBefore, _ := json.Marshal(cfg.Sandboxes)
	m := &fakeMachine{}
	if _, err := Compute(cfg, st, WithMachine(m)); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(st)
	cfgAfter, _ := json.Marshal(cfg.Sandboxes)
	if !bytes.Equal(before, after) || !bytes.Equal(cfgBefore, cfgAfter) {
		t.Error("Compute changed its inputs")
	}
	// Only the replaced sandbox's mount is checked on the machine: its port is held by its own
	// running instance.
	want := []string{"path /project/.data/pg"}
	if strings.Join(m.asked, ",") != strings.Join(want, ",") {
		t.Errorf("machine asked %q, want %q", m.asked, want)
	}
}

func TestNewRecordRedacts(t *testing.T) {
	sb := sandbox("db", env("PW", "s3cret", "USER", "app"), mount("/secret/path", "/data"),
		func(s *lang.Sandbox) {
			s.Command = []string{"run", "--token", "s3cret"}
			s.Sensitive = []string{"env.PW", "command", "mounts[0].source"}
		})
	r := NewRecord(sb, nil, "")
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "/secret/path") {
		t.Errorf("record holds a secret: %s", b)
	}
	if sb.Env["PW"] != "s3cret" || sb.Command[2] != "s3cret" || sb.Mounts[0].Source != "/secret/path" {
		t.Error("NewRecord changed the spec")
	}
	if string(r.Spec.Fields["env.USER"]) != `"app"` || !strings.Contains(string(r.Spec.Fields["mounts[0]"]), `"target":"/data"`) {
		t.Errorf("redacted too much: %+v", r.Spec)
	}
	// Fingerprints are of the real values: the same spec plans no change.
	st := NewState()
	st.Sandboxes["db"] = r
	r.Status = StatusRunning
	p, err := Compute(config([]*lang.Sandbox{sb}), st)
	if err != nil {
		t.Fatal(err)
	}
	if p.HasChanges() {
		t.Errorf("changes: %+v", p.Steps)
	}
}

func TestDriverChangeReplaces(t *testing.T) {
	cfg := config([]*lang.Sandbox{sandbox("a"), sandbox("b")})
	st := applied(cfg, nil)
	for _, r := range st.Sandboxes {
		r.Driver = "ns"
	}
	p, err := Compute(cfg, st, WithDriver("ns"))
	if err != nil || p.HasChanges() {
		t.Fatalf("same driver: %v %+v", err, p.Steps)
	}
	p, err = Compute(cfg, st, WithDriver("krun"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 {
		t.Fatalf("steps: %+v", p.Steps)
	}
	for _, s := range p.Steps {
		if s.Action != ActionReplace || len(s.Changes) != 1 || s.Changes[0].Field != FieldDriver ||
			s.Changes[0].Old != "ns" || s.Changes[0].New != "krun" || !s.Changes[0].ForcesReplacement {
			t.Errorf("step %s: %+v", s.Sandbox, s)
		}
	}
	// A record from before drivers were recorded is not replaced.
	for _, r := range st.Sandboxes {
		r.Driver = ""
	}
	if p, _ := Compute(cfg, st, WithDriver("krun")); p.HasChanges() {
		t.Errorf("unknown recorded driver: %+v", p.Steps)
	}
}

// A pids limit other than the default is a field that forces replacement; the default is
// none, so records from before pids existed plan no change.
func TestPidsField(t *testing.T) {
	sb := sandbox("web")
	st := applied(config([]*lang.Sandbox{sb}), nil)
	sb2 := sandbox("web", func(s *lang.Sandbox) { s.Pids = lang.DefaultPids })
	p, err := Compute(config([]*lang.Sandbox{sb2}), st)
	if err != nil || p.HasChanges() {
		t.Fatalf("default pids planned %+v, %v", p, err)
	}
	sb3 := sandbox("web", func(s *lang.Sandbox) { s.Pids = 100 })
	p, err = Compute(config([]*lang.Sandbox{sb3}), st)
	if err != nil || len(p.Steps) != 1 || p.Steps[0].Action != ActionReplace || p.Steps[0].Changes[0].Field != FieldPids {
		t.Fatalf("pids 100: %+v, %v", p.Steps, err)
	}
}
