package lang

import (
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// project writes files into a fresh directory and returns the Sandboxfile's path.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, DefaultFilename)
}

func mustLoad(t *testing.T, path string, opts ...Option) *Config {
	t.Helper()
	opts = append([]Option{WithEnviron(nil), WithCwd(filepath.Dir(path))}, opts...)
	cfg, diags := Load(path, opts...)
	if diags.HasErrors() {
		t.Fatalf("unexpected errors:\n%s", renderDiags(cfg, diags))
	}
	return cfg
}

func TestVariablePrecedence(t *testing.T) {
	const sf = `
variable "x" {
  type    = string
  default = "default"
}
variable "n" {
  type    = number
  default = 1
}
variable "l" {
  type    = list(string)
  default = []
}
sandbox "s" {
  image = "alpine"
  env   = { X = var.x, N = tostring(var.n), L = join(",", var.l) }
}
`
	tests := []struct {
		name    string
		files   map[string]string
		env     []string
		varFile []string
		vars    map[string]string
		want    map[string]string
	}{
		{name: "default", want: map[string]string{"X": "default", "N": "1", "L": ""}},
		{
			name: "environment", env: []string{"SBX_VAR_x=env", "SBX_VAR_n=2", `SBX_VAR_l=["a","b"]`},
			want: map[string]string{"X": "env", "N": "2", "L": "a,b"},
		},
		{
			name:  ".env over defaults",
			files: map[string]string{".env": "# for compose and sbx\nexport x='dot env'\nn=7\nl=[\"a\"]\nUNRELATED=1\n"},
			want:  map[string]string{"X": "dot env", "N": "7", "L": "a"},
		},
		{
			name:  ".env SBX_VAR_ lines over plain ones",
			files: map[string]string{".env": "SBX_VAR_x=prefixed\nx=plain\n"},
			want:  map[string]string{"X": "prefixed", "N": "1", "L": ""},
		},
		{
			name:  "environment over .env",
			files: map[string]string{".env": "x=dotenv\nn=7\n"},
			env:   []string{"SBX_VAR_x=env"},
			want:  map[string]string{"X": "env", "N": "7", "L": ""},
		},
		{
			name:  "auto files in order over environment",
			files: map[string]string{"a.auto.sbxvars.hcl": `x = "a"` + "\nn = 3\n", "b.auto.sbxvars.hcl": `x = "b"`},
			env:   []string{"SBX_VAR_x=env", "SBX_VAR_n=2"},
			want:  map[string]string{"X": "b", "N": "3", "L": ""},
		},
		{
			name:    "var files in order over auto files",
			files:   map[string]string{"a.auto.sbxvars.hcl": `x = "a"`, "one.hcl": "x = \"one\"\nn = 4\n", "two.hcl": `x = "two"`},
			varFile: []string{"one.hcl", "two.hcl"},
			want:    map[string]string{"X": "two", "N": "4", "L": ""},
		},
		{
			name:    "--var over everything",
			files:   map[string]string{"a.auto.sbxvars.hcl": `x = "a"`, "one.hcl": `x = "one"`},
			env:     []string{"SBX_VAR_x=env"},
			varFile: []string{"one.hcl"},
			vars:    map[string]string{"x": "cli", "n": "5", "l": `["z"]`},
			want:    map[string]string{"X": "cli", "N": "5", "L": "z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{DefaultFilename: sf}
			for k, v := range tt.files {
				files[k] = v
			}
			path := project(t, files)
			cfg := mustLoad(t, path, WithEnviron(tt.env), WithVarFiles(tt.varFile), WithVars(tt.vars))
			if got := cfg.Sandboxes[0].Env; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVariableErrors(t *testing.T) {
	const sf = `
variable "port" {
  type = number
  default = 80
  validation {
    condition     = var.port > 1024
    error_message = "Use an unprivileged port."
  }
}
sandbox "s" {
  image = "alpine"
}
`
	tests := []struct {
		name     string
		files    map[string]string
		opts     []Option
		severity hcl.DiagnosticSeverity
		summary  string
		detail   []string // substrings
		line     int      // subject line, 0 for none
		file     string
	}{
		{name: "default fails validation", summary: "Invalid value for variable",
			detail: []string{"Use an unprivileged port.", "from the default"}, line: 6, file: DefaultFilename},
		{name: "--var fails validation", opts: []Option{WithVars(map[string]string{"port": "80"})},
			summary: "Invalid value for variable", detail: []string{"Use an unprivileged port.", "from --var"}, line: 6, file: DefaultFilename},
		{name: "environment fails validation", opts: []Option{WithEnviron([]string{"SBX_VAR_port=22"})},
			summary: "Invalid value for variable", detail: []string{"from environment variable SBX_VAR_port"}, line: 6, file: DefaultFilename},
		{name: "auto file fails validation", files: map[string]string{"p.auto.sbxvars.hcl": "port = 1"},
			summary: "Invalid value for variable", detail: []string{"from file p.auto.sbxvars.hcl"}, line: 6, file: DefaultFilename},
		{name: "wrong type from --var", opts: []Option{WithVars(map[string]string{"port": "eighty"})},
			summary: "Invalid value for variable", detail: []string{"from --var"}, line: 2, file: DefaultFilename},
		{name: "wrong type in var file", files: map[string]string{"v.hcl": "\nport = \"x\""}, opts: []Option{WithVarFiles([]string{"v.hcl"})},
			summary: "Invalid value for variable", detail: []string{"from file v.hcl", "number is required"}, line: 2, file: "v.hcl"},
		{name: "undeclared --var", opts: []Option{WithVars(map[string]string{"prot": "2000"})},
			summary: "Value for undeclared variable", detail: []string{`Did you mean "port"?`}},
		{name: "undeclared in var file", files: map[string]string{"v.hcl": "port = 2000\nother = 1"}, opts: []Option{WithVarFiles([]string{"v.hcl"})},
			summary: "Value for undeclared variable", line: 2, file: "v.hcl"},
		{name: "undeclared in auto file is a warning", files: map[string]string{"x.auto.sbxvars.hcl": "port = 2000\nother = 1"},
			severity: hcl.DiagWarning, summary: "Value for undeclared variable", line: 2, file: "x.auto.sbxvars.hcl"},
		{name: "JSON var file", files: map[string]string{"v.json": `{"port": 1}`}, opts: []Option{WithVarFiles([]string{"v.json"})},
			summary: "Invalid value for variable", detail: []string{"from file v.json"}, line: 6, file: DefaultFilename},
		{name: "missing var file", opts: []Option{WithVarFiles([]string{"nope.hcl"})}, summary: "Cannot read variable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{DefaultFilename: sf}
			for k, v := range tt.files {
				files[k] = v
			}
			path := project(t, files)
			// SBX_VAR_ values for undeclared variables are ignored; a valid port keeps the
			// tests about other sources free of the default's validation error.
			env := []string{"SBX_VAR_undeclared=1"}
			if tt.summary != "Invalid value for variable" {
				env = append(env, "SBX_VAR_port=2000")
			}
			opts := append([]Option{WithEnviron(env), WithCwd(filepath.Dir(path))}, tt.opts...)
			cfg, diags := Load(path, opts...)
			if len(diags) != 1 {
				t.Fatalf("want exactly one diagnostic, got %d:\n%s", len(diags), renderDiags(cfg, diags))
			}
			d := diags[0]
			if d.Severity != tt.severity && !(tt.severity == 0 && d.Severity == hcl.DiagError) {
				t.Errorf("severity = %v", d.Severity)
			}
			if d.Summary != tt.summary {
				t.Errorf("summary = %q, want %q", d.Summary, tt.summary)
			}
			for _, s := range tt.detail {
				if !strings.Contains(d.Detail, s) {
					t.Errorf("detail %q does not contain %q", d.Detail, s)
				}
			}
			if tt.line != 0 {
				if d.Subject == nil || d.Subject.Start.Line != tt.line || filepath.Base(d.Subject.Filename) != tt.file {
					t.Errorf("subject = %v, want %s:%d", d.Subject, tt.file, tt.line)
				}
			}
		})
	}
}

func TestSensitive(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
variable "password" {
  default   = "hunter2"
  sensitive = true
}
variable "plain" {
  default = "public"
}
locals {
  url = "postgres://u:${var.password}@db"
}
sandbox "s" {
  image      = "alpine"
  command    = ["run", upper(var.password)]
  entrypoint = ["/bin/sh"]
  workdir    = var.password == "" ? "/a" : "/b"
  env = {
    URL   = local.url
    PLAIN = var.plain
    HASH  = base64encode(var.password)
  }
  mount {
    source = "./${var.password}"
    target = "/data"
  }
}
`})
	cfg := mustLoad(t, path)
	s := cfg.Sandboxes[0]
	want := []string{"command", "env.HASH", "env.URL", "mounts[0].source", "workdir"}
	if !reflect.DeepEqual(s.Sensitive, want) {
		t.Errorf("Sensitive = %v, want %v", s.Sensitive, want)
	}
	if s.Command[1] != "HUNTER2" || s.Env["URL"] != "postgres://u:hunter2@db" {
		t.Errorf("values must be unmarked and resolved: %v %v", s.Command, s.Env)
	}
}

func TestSensitiveNotInDiagnostics(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
variable "secret" {
  default   = "Hunter2Secret"
  sensitive = true
}
sandbox "s" {
  image  = var.secret
  memory = var.secret
  env    = { F = file(var.secret) }
}`})
	cfg, diags := Load(path, WithEnviron(nil))
	if len(diags) != 3 {
		t.Fatalf("want 3 errors, got:\n%s", renderDiags(cfg, diags))
	}
	if text := renderDiags(cfg, diags); strings.Contains(text, "Hunter2Secret") || !strings.Contains(text, "(sensitive value)") {
		t.Errorf("the sensitive value leaked or was not replaced:\n%s", text)
	}
}

func TestIPAllocation(t *testing.T) {
	sf := `
network "n" {
  subnet = "10.1.2.0/29"
}
sandbox "fixed" {
  image = "alpine"
  network {
    scope = "group"
    group = network.n
    ip    = "10.1.2.3"
  }
}
`
	for _, n := range []string{"a", "b", "c"} {
		sf += `sandbox "` + n + `" {
  image = "alpine"
  network {
    scope = "group"
    group = network.n
  }
}
`
	}
	path := project(t, map[string]string{DefaultFilename: sf})
	first := mustLoad(t, path)
	ips := map[string]netip.Addr{}
	for _, s := range first.Sandboxes {
		ip := s.Network.IP
		if !ip.IsValid() || !netip.MustParsePrefix("10.1.2.0/29").Contains(ip) {
			t.Fatalf("%s: bad ip %v", s.Name, ip)
		}
		if ip == netip.MustParseAddr("10.1.2.0") || ip == netip.MustParseAddr("10.1.2.1") || ip == netip.MustParseAddr("10.1.2.7") {
			t.Errorf("%s: reserved address %v allocated", s.Name, ip)
		}
		for n, other := range ips {
			if other == ip {
				t.Errorf("%s and %s share %v", s.Name, n, ip)
			}
		}
		ips[s.Name] = ip
		if (s.Name == "fixed") == s.Network.IPAllocated {
			t.Errorf("%s: IPAllocated = %v", s.Name, s.Network.IPAllocated)
		}
	}
	if ips["fixed"] != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("declared ip not kept: %v", ips["fixed"])
	}
	// Deterministic: the same file gives the same addresses.
	again := mustLoad(t, path)
	for _, s := range again.Sandboxes {
		if s.Network.IP != ips[s.Name] {
			t.Errorf("%s: %v then %v", s.Name, ips[s.Name], s.Network.IP)
		}
	}
	// Sticky: a usable, free previous address wins; one outside the subnet, reserved or taken
	// by a declared address is ignored.
	sticky := map[string]netip.Addr{
		"a": netip.MustParseAddr("10.1.2.6"),
		"b": netip.MustParseAddr("10.1.3.9"), // outside
		"c": netip.MustParseAddr("10.1.2.3"), // declared by fixed
	}
	st := mustLoad(t, path, WithStickyIPs(sticky))
	got := map[string]netip.Addr{}
	for _, s := range st.Sandboxes {
		got[s.Name] = s.Network.IP
	}
	if got["a"] != sticky["a"] {
		t.Errorf("a: sticky %v not kept, got %v", sticky["a"], got["a"])
	}
	if got["b"] == sticky["b"] || got["c"] == sticky["c"] {
		t.Errorf("unusable sticky addresses were used: %v", got)
	}
	if got["fixed"] != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("sticky must not displace a declared address: %v", got)
	}
	// A full subnet is reported.
	full := strings.Replace(sf, "/29", "/30", 1)
	full = strings.Replace(full, `ip    = "10.1.2.3"`, `ip    = "10.1.2.2"`, 1)
	path = project(t, map[string]string{DefaultFilename: full})
	cfg, diags := Load(path, WithEnviron(nil))
	if got := diagSummaries(diags); !reflect.DeepEqual(got, []string{"Subnet exhausted", "Subnet exhausted", "Subnet exhausted"}) {
		t.Errorf("diagnostics = %v\n%s", got, renderDiags(cfg, diags))
	}
}

func TestFileConfinement(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := project(t, map[string]string{"conf/in.txt": "inside", "sub/x": ""})
	dir := filepath.Dir(path)
	if err := os.Symlink(secret, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "sub", "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "conf", "in.txt"), filepath.Join(dir, "inlink.txt")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr   string
		want   string // value on success
		errSub string // detail substring on failure
	}{
		{expr: `file("conf/in.txt")`, want: "inside"},
		{expr: `file("${path.root}/conf/in.txt")`, want: "inside"},
		{expr: `file("inlink.txt")`, want: "inside"},
		{expr: `file("./sub/../conf/in.txt")`, want: "inside"},
		{expr: `file("../` + filepath.Base(outside) + `/secret.txt")`, errSub: "outside the project directory"},
		{expr: strconv.Quote(secret) + ` == "" ? "" : file(` + strconv.Quote(secret) + `)`, errSub: "outside the project directory"},
		{expr: `file("link.txt")`, errSub: "outside the project directory"},
		{expr: `file("sub/out/secret.txt")`, errSub: "outside the project directory"},
		{expr: `file("nope.txt")`, errSub: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			sf := "sandbox \"s\" {\n  image = \"alpine\"\n  env = { V = " + tt.expr + " }\n}\n"
			if err := os.WriteFile(path, []byte(sf), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, diags := Load(path, WithEnviron(nil))
			if tt.errSub == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected: %s", renderDiags(cfg, diags))
				}
				if got := cfg.Sandboxes[0].Env["V"]; got != tt.want {
					t.Errorf("V = %q, want %q", got, tt.want)
				}
				if len(cfg.ReadFiles) != 1 || !strings.HasPrefix(cfg.ReadFiles[0], dir) {
					t.Errorf("ReadFiles = %v", cfg.ReadFiles)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags[0].Detail, tt.errSub) || diags[0].Subject == nil {
				t.Fatalf("want one error containing %q, got:\n%s", tt.errSub, renderDiags(cfg, diags))
			}
			if strings.Contains(renderDiags(cfg, diags), "top secret") {
				t.Error("the secret leaked into a diagnostic")
			}
		})
	}
}

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{name: "plain", in: "A=1\nB = two \n", want: map[string]string{"A": "1", "B": "two"}},
		{name: "comments and blanks", in: "# c\n\n  # indented\nA=1 # trailing\nB=x#y\n", want: map[string]string{"A": "1", "B": "x#y"}},
		{name: "export", in: "export A=1\nexport  B=2\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "single quotes are literal", in: `A='$B \n # x'`, want: map[string]string{"A": `$B \n # x`}},
		{name: "double quotes escape", in: `A="a\nb\t\"c\"\\"`, want: map[string]string{"A": "a\nb\t\"c\"\\"}},
		{name: "multi-line double quotes", in: "A=\"one\ntwo\"\nB=3", want: map[string]string{"A": "one\ntwo", "B": "3"}},
		{name: "empty value", in: "A=\nB=''\n", want: map[string]string{"A": "", "B": ""}},
		{name: "crlf", in: "A=1\r\nB=2\r\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "later wins", in: "A=1\nA=2", want: map[string]string{"A": "2"}},
		{name: "equals in value", in: "A=b=c", want: map[string]string{"A": "b=c"}},
		{name: "no equals", in: "A=1\nJUNK\n", err: "line 2"},
		{name: "bad key", in: "1A=1", err: "line 1"},
		{name: "unterminated", in: "A=\"x\nB=1", err: "unterminated double quote"},
		{name: "unterminated single", in: "A='x", err: "unterminated single quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDotenv([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvFileMerge(t *testing.T) {
	path := project(t, map[string]string{
		DefaultFilename: `
sandbox "s" {
  image    = "alpine"
  env_file = ["a.env", "sub/b.env"]
  env      = { C = "env" }
}`,
		"a.env":     "A=a\nB=a\nC=a\n",
		"sub/b.env": "B=b\n",
	})
	cfg := mustLoad(t, path)
	s := cfg.Sandboxes[0]
	if want := map[string]string{"A": "a", "B": "b", "C": "env"}; !reflect.DeepEqual(s.Env, want) {
		t.Errorf("Env = %v, want %v", s.Env, want)
	}
	dir := filepath.Dir(path)
	if want := []string{filepath.Join(dir, "a.env"), filepath.Join(dir, "sub", "b.env")}; !reflect.DeepEqual(s.EnvFiles, want) {
		t.Errorf("EnvFiles = %v", s.EnvFiles)
	}
	if len(cfg.ReadFiles) != 2 {
		t.Errorf("ReadFiles = %v", cfg.ReadFiles)
	}
}

func TestCycleDetails(t *testing.T) {
	tests := []struct {
		name, sf, want string
	}{
		{name: "locals", sf: "locals {\n  a = local.b\n  b = local.a\n}\n", want: "local.a → local.b → local.a"},
		{name: "sandboxes", sf: `
sandbox "a" {
  image = "alpine"
  env = { X = sandbox.b.name }
}
sandbox "b" {
  image = "alpine"
  env = { X = sandbox.c.name }
}
sandbox "c" {
  image = "alpine"
  depends_on = [sandbox.a]
}`, want: "sandbox.a → sandbox.b → sandbox.c → sandbox.a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := project(t, map[string]string{DefaultFilename: tt.sf})
			cfg, diags := Load(path, WithEnviron(nil))
			if len(diags) != 1 || !strings.Contains(diags[0].Detail, tt.want) {
				t.Fatalf("want one diagnostic naming %q, got:\n%s", tt.want, renderDiags(cfg, diags))
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
sandbox "s" {
  imag = "alpine"
  netwrk {
  }
  rlimits = { nofiel = 1 }
  restart = "allways"
}`})
	cfg, diags := Load(path, WithEnviron(nil))
	text := renderDiags(cfg, diags)
	for _, want := range []string{`Did you mean "image"?`, `Did you mean "network"?`, `Did you mean "NOFILE"?`, `Did you mean "always"?`} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestDynamicBlocks(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
variable "ports" {
  type    = map(number)
  default = { "8080" = 80, "8443" = 443 }
}
sandbox "s" {
  image = "alpine"
  port {
    host  = 2222
    guest = 22
  }
  dynamic "port" {
    for_each = var.ports
    content {
      host  = tonumber(port.key)
      guest = port.value
    }
  }
  dynamic "mount" {
    for_each = toset(["a", "b"])
    iterator = m
    content {
      source    = m.value
      target    = "/mnt/${m.value}"
      read_only = m.value == "b"
    }
  }
}
sandbox "t" {
  image = "alpine"
  env   = { P = tostring(sandbox.s.ports[443]) }
}`})
	cfg := mustLoad(t, path)
	s := cfg.Sandboxes[0]
	wantPorts := []Port{
		{HostIP: "127.0.0.1", Host: 2222, Guest: 22, Protocol: "tcp"},
		{HostIP: "127.0.0.1", Host: 8080, Guest: 80, Protocol: "tcp"},
		{HostIP: "127.0.0.1", Host: 8443, Guest: 443, Protocol: "tcp"},
	}
	if !reflect.DeepEqual(s.Ports, wantPorts) {
		t.Errorf("Ports = %+v", s.Ports)
	}
	dir := filepath.Dir(path)
	wantMounts := []Mount{{Source: filepath.Join(dir, "a"), Target: "/mnt/a"}, {Source: filepath.Join(dir, "b"), Target: "/mnt/b", ReadOnly: true}}
	if !reflect.DeepEqual(s.Mounts, wantMounts) {
		t.Errorf("Mounts = %+v", s.Mounts)
	}
	if got := cfg.Sandboxes[1].Env["P"]; got != "8443" {
		t.Errorf("sandbox.s.ports[443] = %q", got)
	}
	if got := cfg.Dependencies("t"); !reflect.DeepEqual(got, []string{"s"}) {
		t.Errorf("Dependencies(t) = %v", got)
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "512MiB", want: 512}, {in: "1GiB", want: 1024}, {in: "2G", want: 2048}, {in: "2GB", want: 2048},
		{in: "256M", want: 256}, {in: "256MB", want: 256}, {in: "1.5GiB", want: 1536}, {in: "64", want: 64},
		{in: "1gib", want: 1024}, {in: " 8 MiB ", want: 8}, {in: "1TiB", want: 1 << 20},
		{in: "1KiB", bad: true}, {in: "0MiB", bad: true}, {in: "0.5MiB", bad: true}, {in: "lots", bad: true}, {in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := parseMemory(ctyString(tt.in))
		if tt.bad != (err != nil) || (!tt.bad && got != tt.want) {
			t.Errorf("parseMemory(%q) = %d, %v", tt.in, got, err)
		}
	}
}

func TestRlimits(t *testing.T) {
	for _, in := range []string{"nofile", "NOFILE", "RLIMIT_NOFILE", "rlimit_nofile", "7"} {
		if name, n, err := parseRlimitName(in); err != nil || name != "NOFILE" || n != 7 {
			t.Errorf("parseRlimitName(%q) = %q %d %v", in, name, n, err)
		}
	}
	for i, n := range rlimitNames() {
		if got, num, _ := parseRlimitName(n); got != n || num != i {
			t.Errorf("%s: got %s %d", n, got, num)
		}
	}
	for _, in := range []string{"16", "-1", "FILES", ""} {
		if _, _, err := parseRlimitName(in); err == nil {
			t.Errorf("parseRlimitName(%q) accepted", in)
		}
	}
	tests := []struct {
		in         string
		soft, hard uint64
		bad        bool
	}{
		{in: "1024:4096", soft: 1024, hard: 4096}, {in: "10", soft: 10, hard: 10},
		{in: "unlimited", soft: rlimitInfinity, hard: rlimitInfinity}, {in: "1:infinity", soft: 1, hard: rlimitInfinity},
		{in: "5:1", bad: true}, {in: "x", bad: true}, {in: "1:", bad: true}, {in: "unlimited:1", bad: true},
	}
	for _, tt := range tests {
		soft, hard, err := parseRlimitValue(ctyString(tt.in))
		if tt.bad != (err != nil) || soft != tt.soft || hard != tt.hard {
			t.Errorf("parseRlimitValue(%q) = %d %d %v", tt.in, soft, hard, err)
		}
	}
}

func TestImages(t *testing.T) {
	path := project(t, map[string]string{})
	dir := filepath.Dir(path)
	l := &loader{cfg: &Config{Dir: dir}}
	tests := []struct{ in, want string }{
		{"alpine", "alpine"},
		{"docker.io/library/postgres:16", "docker.io/library/postgres:16"},
		{"localhost:5000/x/y@sha256:" + strings.Repeat("a", 64), "localhost:5000/x/y@sha256:" + strings.Repeat("a", 64)},
		{"oci-layout:./img", "oci-layout:" + dir + "/img"},
		{"oci-layout:img:v1", "oci-layout:" + dir + "/img:v1"},
		{"oci-layout:/abs/img@sha256:" + strings.Repeat("b", 64), "oci-layout:/abs/img@sha256:" + strings.Repeat("b", 64)},
		{"docker-archive:x.tar", "docker-archive:" + dir + "/x.tar"},
		{"dir:rootfs", "dir:" + dir + "/rootfs"},
		{"", ""}, {"Bad/Upper", ""}, {"oci-layout:", ""}, {"oci-layout:x@sha256:1", ""}, {"dir:", ""}, {"a:b:c:d", ""},
	}
	for _, tt := range tests {
		ref, _, err := l.normalizeImage(tt.in)
		if got := ref.String(); (tt.want == "") != (err != nil) || got != tt.want {
			t.Errorf("normalizeImage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
sandbox "s" {
  image = "alpine"
  port {
    guest = 80
  }
  ready {
    tcp = 80
  }
}`})
	cfg := mustLoad(t, path)
	s := cfg.Sandboxes[0]
	if cfg.Project.Name != filepath.Base(filepath.Dir(path)) || cfg.Project.Driver != "" {
		t.Errorf("project = %+v", cfg.Project)
	}
	want := &Sandbox{
		Name: "s", Image: "alpine", CPUs: 1, MemoryMiB: 512, Pids: DefaultPids, Restart: RestartNo, StopTimeout: defaultStopTimeout,
		Network: NetworkSpec{Scope: ScopePublic},
		Ports:   []Port{{HostIP: "127.0.0.1", Host: 80, Guest: 80, Protocol: "tcp"}},
		Ready:   &Ready{TCP: 80, Timeout: defaultReadyTimeout, Interval: defaultReadyInterval},
		Range:   s.Range,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	cfg, diags := Load(filepath.Join(dir, "Sandboxfile"), WithEnviron(nil))
	if !diags.HasErrors() || cfg == nil || cfg.Dir != dir || cfg.Sources == nil {
		t.Fatalf("cfg = %+v, diags = %v", cfg, diags)
	}
	if _, diags := Load(filepath.Join(dir, "Sandboxfile"), WithCwd("")); !diags.HasErrors() {
		t.Error("an empty cwd must be refused")
	}
}

func TestRelativePath(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: "sandbox \"s\" {\n  image = \"alpine\"\n}\n"})
	dir := filepath.Dir(path)
	cfg := mustLoad(t, DefaultFilename, WithCwd(dir))
	if cfg.File != path || cfg.Dir != dir || len(cfg.Sandboxes) != 1 {
		t.Errorf("File = %s, Dir = %s", cfg.File, cfg.Dir)
	}
}

func TestPathValues(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `
sandbox "s" {
  image = "alpine"
  env   = { ROOT = path.root, CWD = path.cwd, HOME = env("HOME") }
}`})
	cfg := mustLoad(t, path, WithCwd("/somewhere"), WithEnviron([]string{"HOME=/h"}))
	want := map[string]string{"ROOT": filepath.Dir(path), "CWD": "/somewhere", "HOME": "/h"}
	if got := cfg.Sandboxes[0].Env; !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
}

// TestImports keeps lang free of sbx's lower layers and of heavy dependencies.
func TestImports(t *testing.T) {
	allowed := []string{"github.com/hashicorp/hcl/v2", "github.com/zclconf/go-cty/", "github.com/google/go-containerregistry/pkg/name", "github.com/agext/levenshtein",
		"github.com/sbx-dev/sbx/lang/"}
	files, _ := filepath.Glob("*.go")
	sub, _ := filepath.Glob("*/*.go")
	files = append(files, sub...)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains(strings.Split(p, "/")[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				if strings.HasPrefix(p, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

func ctyString(s string) cty.Value { return cty.StringVal(s) }

func TestSubnetRange(t *testing.T) {
	tests := []struct {
		prefix string
		usable []string
		not    []string
		count  uint64
	}{
		{prefix: "10.0.0.0/24", usable: []string{"10.0.0.2", "10.0.0.254"}, not: []string{"10.0.0.0", "10.0.0.1", "10.0.0.255", "10.0.1.2"}, count: 253},
		{prefix: "10.0.0.0/29", usable: []string{"10.0.0.2", "10.0.0.6"}, not: []string{"10.0.0.7"}, count: 5},
		{prefix: "fd00::/64", usable: []string{"fd00::2", "fd00::ffff:ffff:ffff:ffff"}, not: []string{"fd00::", "fd00::1", "fd01::2"}, count: 1<<32 - 2},
		{prefix: "fd00::/126", usable: []string{"fd00::2", "fd00::3"}, not: []string{"fd00::1"}, count: 2},
	}
	for _, tt := range tests {
		r, ok := newSubnetRange(netip.MustParsePrefix(tt.prefix))
		if !ok || r.count != tt.count {
			t.Errorf("%s: ok=%v count=%d, want %d", tt.prefix, ok, r.count, tt.count)
			continue
		}
		for _, a := range tt.usable {
			if !r.usable(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s should be usable", tt.prefix, a)
			}
		}
		for _, a := range tt.not {
			if r.usable(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s should not be usable", tt.prefix, a)
			}
		}
		taken := map[netip.Addr]string{}
		for i := 0; i < 5 && uint64(i) < r.count; i++ {
			a, ok := r.allocate("same", taken)
			if !ok || !r.usable(a) {
				t.Fatalf("%s: allocated %v", tt.prefix, a)
			}
			if _, dup := taken[a]; dup {
				t.Fatalf("%s: %v allocated twice", tt.prefix, a)
			}
			taken[a] = "x"
		}
	}
	for _, p := range []string{"10.0.0.0/31", "10.0.0.0/32", "fd00::/127"} {
		if _, ok := newSubnetRange(netip.MustParsePrefix(p)); ok {
			t.Errorf("%s has no room and must be refused", p)
		}
	}
}

func TestIsSensitive(t *testing.T) {
	s := &Sandbox{Sensitive: []string{"command", "env.TOKEN", "mounts[1].source"}}
	for field, want := range map[string]bool{
		"command": true, "env.TOKEN": true, "env": true, "env.TOK": false, "mounts": true, "mounts[1]": true,
		"mounts[1].source": true, "mounts[0]": false, "mounts[1].target": false, "image": false, "commands": false,
	} {
		if got := s.IsSensitive(field); got != want {
			t.Errorf("IsSensitive(%q) = %v, want %v", field, got, want)
		}
	}
}

// TestMissingImageSource: a typo in a local image source is found by Load with the position of
// the value and a message that says where sbx looked.
func TestMissingImageSource(t *testing.T) {
	path := project(t, map[string]string{DefaultFilename: `sandbox "web" {
  image = "oci-layout:./imgae"
}
`})
	_, diags := Load(path, WithEnviron(nil), WithCwd(filepath.Dir(path)))
	if len(diags) != 1 {
		t.Fatalf("diagnostics: %v", diags)
	}
	d := diags[0]
	want := "No OCI layout at ./imgae (relative to the Sandboxfile's directory). Build the image into it first"
	if d.Summary != "Missing image source" || !strings.HasPrefix(d.Detail, want) {
		t.Errorf("got %q: %q", d.Summary, d.Detail)
	}
	if d.Subject == nil || d.Subject.Start.Line != 2 || d.Subject.Start.Column != 11 {
		t.Errorf("subject %+v, want line 2 column 11", d.Subject)
	}
}

// TestDotEnv covers the .env file's problems, each pointed at its line, and when it is read.
func TestDotEnv(t *testing.T) {
	const vars = `
variable "n" {
  type    = number
  default = 1
}
`
	tests := []struct {
		name    string
		sf      string
		dotenv  string
		summary string // the one expected diagnostic, or ""
		line    int
		warning bool
	}{
		{name: "syntax", sf: vars, dotenv: "n=2\nJUNK\n", summary: "Invalid .env file", line: 2},
		{name: "type", sf: vars, dotenv: "# c\nn=abc\n", summary: "Invalid value for variable", line: 2},
		{name: "undeclared prefixed", sf: vars, dotenv: "SBX_VAR_m=1\n", summary: "Value for undeclared variable", line: 1, warning: true},
		{name: "undeclared plain is ignored", sf: vars, dotenv: "PATH=/x\nm=1\n"},
		{name: "not read without variables", sf: "", dotenv: "JUNK\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := project(t, map[string]string{DefaultFilename: tt.sf + `sandbox "s" { image = "alpine" }`, ".env": tt.dotenv})
			cfg, diags := Load(path, WithEnviron(nil), WithCwd(filepath.Dir(path)))
			if tt.summary == "" {
				if len(diags) > 0 {
					t.Fatalf("unexpected diagnostics:\n%s", renderDiags(cfg, diags))
				}
				return
			}
			if len(diags) != 1 || diags[0].Summary != tt.summary || (diags[0].Severity == hcl.DiagWarning) != tt.warning {
				t.Fatalf("want one %q, got:\n%s", tt.summary, renderDiags(cfg, diags))
			}
			d := diags[0]
			if d.Subject == nil || filepath.Base(d.Subject.Filename) != ".env" || d.Subject.Start.Line != tt.line {
				t.Errorf("subject %+v, want .env line %d", d.Subject, tt.line)
			}
			if !strings.Contains(renderDiags(cfg, diags), strings.Split(tt.dotenv, "\n")[tt.line-1]) {
				t.Errorf("the rendered diagnostic does not quote the line:\n%s", renderDiags(cfg, diags))
			}
		})
	}

	t.Run("watched", func(t *testing.T) {
		path := project(t, map[string]string{DefaultFilename: vars, ".env": "n=2\n"})
		cfg := mustLoad(t, path)
		if want := []string{filepath.Join(filepath.Dir(path), ".env")}; !reflect.DeepEqual(cfg.VarFiles, want) {
			t.Errorf("VarFiles = %v, want %v", cfg.VarFiles, want)
		}
	})

	t.Run("link outside the project", func(t *testing.T) {
		secret := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(secret, []byte("n=3\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := project(t, map[string]string{DefaultFilename: vars})
		if err := os.Symlink(secret, filepath.Join(filepath.Dir(path), ".env")); err != nil {
			t.Fatal(err)
		}
		_, diags := Load(path, WithEnviron(nil), WithCwd(filepath.Dir(path)))
		if got := diagSummaries(diags); len(got) != 1 || got[0] != "Variable file outside the project" {
			t.Errorf("diagnostics %q", got)
		}
	})
}

func TestProjectNames(t *testing.T) {
	for in, want := range map[string]string{
		"app": "app", "my app": "my-app", "..": "project", ".hidden": "hidden", "é": "project",
		"a\nb": "a-b", strings.Repeat("x", 300): strings.Repeat("x", 63), "v1.2_x-y": "v1.2_x-y",
	} {
		if got := defaultProjectName(in); got != want || !validProjectName(got) {
			t.Errorf("defaultProjectName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "..", ".x", "a b", "a/b", "a\nb", strings.Repeat("x", 64), "-x"} {
		if validProjectName(bad) {
			t.Errorf("validProjectName(%q) = true", bad)
		}
	}
}
