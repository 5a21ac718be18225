package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/lang"
)

// importOne imports one Compose file written into a fresh directory (with extra files beside
// it), checks that the result validates and plans, and returns the loaded config and notes.
func importOne(t *testing.T, yaml string, extra map[string]string, opts ...Option) (*lang.Config, []convert.Note, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	for name, content := range extra {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(context.Background(), []string{file}, append([]Option{WithEnviron(environ)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	src := res.Bytes()
	return checkSandboxfile(t, dir, src), res.Notes, string(src)
}

func hasNote(notes []convert.Note, subject, key, text string) bool {
	for _, n := range notes {
		if n.Subject == subject && n.Key == key && strings.Contains(n.Message, text) {
			return true
		}
	}
	return false
}

// TestMappings checks each Compose key that has an equivalent against the value sbx loads.
func TestMappings(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		extra map[string]string
		check func(t *testing.T, cfg *lang.Config, notes []convert.Note, src string)
	}{
		{"service becomes sandbox, image", "services:\n  web:\n    image: nginx:1.27\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if len(cfg.Sandboxes) != 1 || cfg.Sandboxes[0].Name != "web" || cfg.Sandboxes[0].Image != "nginx:1.27" {
					t.Errorf("sandboxes = %+v", cfg.Sandboxes)
				}
			}},
		{"command and entrypoint", "services:\n  a:\n    image: alpine\n    entrypoint: /bin/sh -c\n    command: [\"echo $$HOME\"]\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				sb := cfg.Sandbox("a")
				if !slices.Equal(sb.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(sb.Command, []string{"echo $HOME"}) {
					t.Errorf("entrypoint %q command %q", sb.Entrypoint, sb.Command)
				}
			}},
		{"environment and env_file", "services:\n  a:\n    image: alpine\n    env_file: a.env\n    environment:\n      B: \"2\"\n      C: ${FROM_SHELL}\n", map[string]string{"a.env": "A=1\nB=1\n"},
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, src string) {
				sb := cfg.Sandbox("a")
				if sb.Env["A"] != "1" || sb.Env["B"] != "2" || sb.Env["C"] != "from the shell" || len(sb.EnvFiles) != 1 {
					t.Errorf("env %v files %v", sb.Env, sb.EnvFiles)
				}
				if !strings.Contains(src, `env_file = ["./a.env"]`) {
					t.Errorf("env_file not referenced:\n%s", src)
				}
			}},
		{"service names as host names become sandbox addresses", "services:\n  app:\n    image: alpine\n    environment:\n      DATABASE_URL: postgres://u:p@db:5432/app\n      REDIS_HOST: cache\n      CACHE_DRIVER: cache\n      SEARCH: http://es:9200,http://db2:1\n      OTHER: mongodb://mongo:27017\n  db:\n    image: postgres\n  cache:\n    image: redis\n    networks:\n      default:\n        aliases: [es]\n  mongo:\n    image: mongo\n    network_mode: none\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, src string) {
				app, db, cache := cfg.Sandbox("app"), cfg.Sandbox("db"), cfg.Sandbox("cache")
				want := map[string]string{
					"DATABASE_URL": "postgres://u:p@" + db.Network.IP.String() + ":5432/app",
					"REDIS_HOST":   cache.Network.IP.String(),
					"CACHE_DRIVER": "cache",
					"SEARCH":       "http://" + cache.Network.IP.String() + ":9200,http://db2:1",
					"OTHER":        "mongodb://mongo:27017",
				}
				for k, v := range want {
					if app.Env[k] != v {
						t.Errorf("%s = %q, want %q", k, app.Env[k], v)
					}
				}
				if !strings.Contains(src, `"postgres://u:p@${sandbox.db.ip}:5432/app"`) || !slices.Equal(cfg.Dependencies("app"), []string{"cache", "db"}) {
					t.Errorf("deps %v\n%s", cfg.Dependencies("app"), src)
				}
			}},
		{"working_dir and user", "services:\n  a:\n    image: alpine\n    working_dir: /srv\n    user: \"1000:100\"\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if sb := cfg.Sandbox("a"); sb.Workdir != "/srv" || sb.User != "1000:100" {
					t.Errorf("workdir %q user %q", sb.Workdir, sb.User)
				}
			}},
		{"ports: default 0.0.0.0 becomes loopback, with a comment", "services:\n  a:\n    image: alpine\n    ports: [\"8080:80\", \"0.0.0.0:9090:90\", \"127.0.0.2:53:53/udp\"]\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, src string) {
				want := []lang.Port{{HostIP: "127.0.0.1", Host: 8080, Guest: 80, Protocol: "tcp"}, {HostIP: "0.0.0.0", Host: 9090, Guest: 90, Protocol: "tcp"}, {HostIP: "127.0.0.2", Host: 53, Guest: 53, Protocol: "udp"}}
				if got := cfg.Sandbox("a").Ports; !slices.Equal(got, want) {
					t.Errorf("ports = %+v", got)
				}
				if strings.Count(src, "Compose publishes on 0.0.0.0") != 1 {
					t.Errorf("want one comment on the changed host_ip:\n%s", src)
				}
			}},
		{"bind mounts", "services:\n  a:\n    image: alpine\n    volumes: [\"./data:/data\", \"./conf:/etc/conf:ro\"]\n", map[string]string{"data/": "", "conf/": ""},
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				m := cfg.Sandbox("a").Mounts
				if len(m) != 2 || filepath.Base(m[0].Source) != "data" || m[0].Target != "/data" || m[0].ReadOnly || !m[1].ReadOnly {
					t.Errorf("mounts = %+v", m)
				}
			}},
		{"named volumes", "services:\n  a:\n    image: alpine\n    volumes: [\"pg:/var/lib/pg\", \"my.cache:/cache:ro\"]\n  b:\n    image: alpine\n    volumes: [\"pg:/backup\"]\nvolumes:\n  pg: {}\n  my.cache: {}\n", nil,
			func(t *testing.T, cfg *lang.Config, notes []convert.Note, src string) {
				if len(cfg.Volumes) != 2 || cfg.Volumes[0].Name != "my-cache" || cfg.Volumes[1].Name != "pg" {
					t.Errorf("volumes = %+v", cfg.Volumes)
				}
				m := cfg.Sandbox("a").Mounts
				if len(m) != 2 || m[0].Volume != "pg" || m[0].Target != "/var/lib/pg" || m[1].Volume != "my-cache" || !m[1].ReadOnly {
					t.Errorf("mounts = %+v", m)
				}
				if m := cfg.Sandbox("b").Mounts; len(m) != 1 || m[0].Volume != "pg" {
					t.Errorf("b mounts = %+v", m)
				}
				if strings.Count(src, `volume "pg" {}`) != 1 || !hasNote(notes, "", "volumes.my.cache", `"my-cache"`) {
					t.Errorf("notes %v\n%s", notes, src)
				}
			}},
		{"networks with subnets, the default one a group", "services:\n  a:\n    image: alpine\n    networks:\n      back:\n        ipv4_address: 10.5.0.7\n  b:\n    image: alpine\n  c:\n    image: alpine\n    networks: [back]\nnetworks:\n  back:\n    internal: true\n    ipam:\n      config:\n        - subnet: 10.5.0.0/24\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if len(cfg.Networks) != 2 || cfg.Networks[0].Name != "back" || cfg.Networks[0].Subnet.String() != "10.5.0.0/24" {
					t.Errorf("networks = %+v", cfg.Networks)
				}
				if n := cfg.Sandbox("a").Network; n.Scope != "group" || n.Group != "back" || n.IP.String() != "10.5.0.7" {
					t.Errorf("a network = %+v", n)
				}
				if n := cfg.Sandbox("b").Network; n.Scope != "public" || n.Group != "default" {
					t.Errorf("b network = %+v", n)
				}
			}},
		{"network_mode none", "services:\n  a:\n    image: alpine\n    network_mode: none\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if n := cfg.Sandbox("a").Network; n.Scope != "none" || n.Group != "" {
					t.Errorf("network = %+v", n)
				}
			}},
		{"depends_on service_healthy with curl: ready http", "services:\n  web:\n    image: alpine\n    depends_on:\n      api: {condition: service_healthy}\n  api:\n    image: alpine\n    healthcheck:\n      test: [\"CMD-SHELL\", \"curl -f http://localhost:8080/ || exit 1\"]\n      interval: 2s\n      retries: 5\n      start_period: 10s\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if d := cfg.Sandbox("web").DependsOn; !slices.Equal(d, []string{"api"}) {
					t.Errorf("depends_on = %v", d)
				}
				r := cfg.Sandbox("api").Ready
				if r == nil || r.HTTP != "http://localhost:8080/" || r.Interval != 2*time.Second || r.Timeout != 20*time.Second {
					t.Errorf("ready = %+v", r)
				}
			}},
		{"pg_isready: ready tcp on the known port", "services:\n  db:\n    image: postgres\n    healthcheck:\n      test: pg_isready -U postgres\n  db2:\n    image: postgres\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\", \"-p\", \"6543\"]\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if r := cfg.Sandbox("db").Ready; r == nil || r.TCP != 5432 {
					t.Errorf("db ready = %+v", r)
				}
				if r := cfg.Sandbox("db2").Ready; r == nil || r.TCP != 6543 {
					t.Errorf("db2 ready = %+v", r)
				}
			}},
		{"a healthcheck that cannot be probed from the host is reported", "services:\n  a:\n    image: alpine\n    healthcheck:\n      test: [\"CMD\", \"/check\"]\n", nil,
			func(t *testing.T, cfg *lang.Config, notes []convert.Note, _ string) {
				if cfg.Sandbox("a").Ready != nil || !hasNote(notes, "a", "healthcheck", "ready block") {
					t.Errorf("notes = %v", notes)
				}
			}},
		{"restart", "services:\n  a:\n    image: alpine\n    restart: always\n  b:\n    image: alpine\n    restart: on-failure:3\n  c:\n    image: alpine\n    restart: unless-stopped\n  d:\n    image: alpine\n    deploy: {restart_policy: {condition: none}}\n", nil,
			func(t *testing.T, cfg *lang.Config, notes []convert.Note, _ string) {
				got := []string{cfg.Sandbox("a").Restart, cfg.Sandbox("b").Restart, cfg.Sandbox("c").Restart, cfg.Sandbox("d").Restart}
				if !slices.Equal(got, []string{"always", "on-failure", "always", "no"}) || !hasNote(notes, "b", "restart", "3 retries") {
					t.Errorf("restart = %v, notes %v", got, notes)
				}
			}},
		{"deploy.resources.limits and cpus/mem_limit", "services:\n  a:\n    image: alpine\n    deploy: {resources: {limits: {cpus: \"3\", memory: 1.5G}}}\n  b:\n    image: alpine\n    cpus: 0.5\n    mem_limit: 100m\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if a := cfg.Sandbox("a"); a.CPUs != 3 || a.MemoryMiB != 1536 {
					t.Errorf("a: cpus %d memory %d", a.CPUs, a.MemoryMiB)
				}
				if b := cfg.Sandbox("b"); b.CPUs != 1 || b.MemoryMiB != 100 {
					t.Errorf("b: cpus %d memory %d", b.CPUs, b.MemoryMiB)
				}
			}},
		{"pids_limit and deploy.resources.limits.pids", "services:\n  a:\n    image: alpine\n    pids_limit: 100\n  b:\n    image: alpine\n    deploy: {resources: {limits: {pids: 200}}}\n  c:\n    image: alpine\n    pids_limit: -1\n", nil,
			func(t *testing.T, cfg *lang.Config, notes []convert.Note, _ string) {
				if cfg.Sandbox("a").Pids != 100 || cfg.Sandbox("b").Pids != 200 || cfg.Sandbox("c").Pids != lang.DefaultPids || !hasNote(notes, "c", "pids_limit", "unlimited") {
					t.Errorf("pids = %d %d %d, notes %v", cfg.Sandbox("a").Pids, cfg.Sandbox("b").Pids, cfg.Sandbox("c").Pids, notes)
				}
			}},
		{"ulimits", "services:\n  a:\n    image: alpine\n    ulimits:\n      nproc: 512\n      nofile: {soft: 1024, hard: 4096}\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				want := []lang.Rlimit{{Resource: "NOFILE", Number: 7, Soft: 1024, Hard: 4096}, {Resource: "NPROC", Number: 6, Soft: 512, Hard: 512}}
				if got := cfg.Sandbox("a").Rlimits; !slices.Equal(got, want) {
					t.Errorf("rlimits = %+v", got)
				}
			}},
		{"stop_grace_period", "services:\n  a:\n    image: alpine\n    stop_grace_period: 45s\n", nil,
			func(t *testing.T, cfg *lang.Config, _ []convert.Note, _ string) {
				if d := cfg.Sandbox("a").StopTimeout; d != 45*time.Second {
					t.Errorf("stop_timeout = %v", d)
				}
			}},
		{"keys without equivalent are listed, one note each", "services:\n  a:\n    image: alpine\n    privileged: true\n    cap_add: [NET_ADMIN]\n    labels: {x: y}\n    network_mode: host\nsecrets:\n  s:\n    file: ./s.txt\n", map[string]string{"s.txt": "x"},
			func(t *testing.T, _ *lang.Config, notes []convert.Note, src string) {
				for _, k := range []string{"privileged", "cap_add", "labels", "network_mode"} {
					if !hasNote(notes, "a", k, "") || !strings.Contains(src, "#   a: "+k+": ") {
						t.Errorf("no note for %s: %v", k, notes)
					}
				}
				if !hasNote(notes, "", "secrets.s", "no equivalent") {
					t.Errorf("no note for the secret: %v", notes)
				}
			}},
		{"names that sbx cannot use are converted and reported", "services:\n  my.app:\n    image: alpine\n  web:\n    image: alpine\n    depends_on: [my.app]\n", nil,
			func(t *testing.T, cfg *lang.Config, notes []convert.Note, _ string) {
				if cfg.Sandbox("my-app") == nil || !slices.Equal(cfg.Sandbox("web").DependsOn, []string{"my-app"}) || !hasNote(notes, "my.app", "name", `"my-app"`) {
					t.Errorf("notes %v", notes)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, notes, src := importOne(t, tc.yaml, tc.extra)
			tc.check(t, cfg, notes, src)
		})
	}
}

// TestInterpolationDotEnvAndProfiles covers what compose-go does for us: ${VAR:-default}, the
// project's .env file, COMPOSE_PROFILES.
func TestInterpolationDotEnvAndProfiles(t *testing.T) {
	yaml := "services:\n  a:\n    image: alpine:${TAG:-3.19}\n    environment: {X: \"${FROM_DOTENV}\"}\n  b:\n    image: alpine\n    profiles: [extra]\n"
	cfg, notes, _ := importOne(t, yaml, map[string]string{".env": "FROM_DOTENV=dotenv\n"})
	if a := cfg.Sandbox("a"); a.Image != "alpine:3.19" || a.Env["X"] != "dotenv" {
		t.Errorf("a = %s %v", a.Image, a.Env)
	}
	if cfg.Sandbox("b") != nil || !hasNote(notes, "b", "profiles", "--profile extra") {
		t.Errorf("b imported without its profile; notes %v", notes)
	}
	cfg, _, _ = importOne(t, yaml, nil, WithEnviron([]string{"TAG=3.20", "COMPOSE_PROFILES=extra"}))
	if cfg.Sandbox("a").Image != "alpine:3.20" || cfg.Sandbox("b") == nil {
		t.Errorf("TAG or COMPOSE_PROFILES ignored: %+v", cfg.Sandboxes)
	}
}

// TestNothingUsable: only when no sandbox comes out is it an error, and the notes say why.
func TestNothingUsable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte("services:\n  a:\n    image: alpine\n    profiles: [x]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(context.Background(), []string{file}, WithEnviron(nil))
	if !errors.Is(err, ErrNothingUsable) || res == nil || !hasNote(res.Notes, "a", "profiles", "--profile x") {
		t.Fatalf("err %v res %+v", err, res)
	}
}
