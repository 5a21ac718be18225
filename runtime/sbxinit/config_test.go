package sbxinit

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteReadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Process: Process{
			Argv: []string{"/bin/echo", `a "quoted" arg`, "new\nline"},
			Env:  []string{`Q=he said "hi"`, "S=a b  c", "N=x\ny"},
			Cwd:  "/srv",
			User: User{Spec: "nobody"},
		},
		Hostname: "web",
		Rlimits:  []Rlimit{{Name: "NOFILE", Resource: 7, Soft: 1024, Hard: 4096}},
		Mounts: []Mount{
			{Type: Proc, Target: "/proc"},
			{Type: Virtiofs, Source: "m0", Target: "/data", ReadOnly: true},
			{Type: Tmpfs, Target: "/tmp", Options: []string{"mode=1777"}},
		},
		Network: &Network{
			Interface: "eth0",
			Address:   netip.MustParsePrefix("10.88.0.10/24"),
			Gateway:   netip.MustParseAddr("10.88.0.1"),
			MTU:       1500,
			DNS:       []netip.Addr{netip.MustParseAddr("10.88.0.1")},
			Hosts:     []Host{{Name: "db", Addr: netip.MustParseAddr("10.88.0.11")}},
		},
		Control: Control{VsockPort: 1024, UnixPath: "/.sbx/ctl/init.sock"},
	}
	if err := WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, ".sbx/config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi, err)
	}
	for _, d := range []string{".sbx/shares/m0", ".sbx/run", ".sbx/ctl"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	got, err := ReadConfig(filepath.Join(dir, ".sbx/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Version = Version
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, cfg)
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no argv", Config{Version: Version}, "process.argv"},
		{"env", Config{Version: Version, Process: Process{Argv: []string{"x"}, Env: []string{"NOEQUALS"}}}, "process.env[0]"},
		{"tag", Config{Version: Version, Process: Process{Argv: []string{"x"}}, Mounts: []Mount{{Type: Virtiofs, Source: "../x", Target: "/a"}}}, "virtiofs tag"},
		{"target", Config{Version: Version, Process: Process{Argv: []string{"x"}}, Mounts: []Mount{{Type: Tmpfs, Target: "a/../b"}}}, "not a clean absolute path"},
		{"type", Config{Version: Version, Process: Process{Argv: []string{"x"}}, Mounts: []Mount{{Type: "nfs", Target: "/a"}}}, "unknown mount type"},
		{"rlimit", Config{Version: Version, Process: Process{Argv: []string{"x"}}, Rlimits: []Rlimit{{Name: "NOFILE", Resource: 7, Soft: 2, Hard: 1}}}, "soft limit"},
		{"address", Config{Version: Version, Process: Process{Argv: []string{"x"}}, Network: &Network{Interface: "eth0"}}, "network.address"},
		{"version", Config{Version: 99, Process: Process{Argv: []string{"x"}}}, "version 99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := DecodeConfig([]byte(`{"version":1,"process":{"argv":["x"]},"extra":1}`)); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown field: %v", err)
	}
}

func TestInstallAndFindInit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sbx-init")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	layer := t.TempDir()
	if err := InstallInit(layer, bin); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(layer, InitPath))
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("installed init: %v %v", fi, err)
	}
	// Installing again (a restart) replaces it.
	if err := InstallInit(layer, bin); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SBX_INIT", bin)
	if got, err := FindInit(); err != nil || got != bin {
		t.Errorf("FindInit() = %q, %v", got, err)
	}
	t.Setenv("SBX_INIT", filepath.Join(t.TempDir(), "missing"))
	if _, err := FindInit(); err == nil || !strings.Contains(err.Error(), "SBX_INIT") {
		t.Errorf("FindInit with a missing SBX_INIT: %v", err)
	}
}

func TestProgramJSON(t *testing.T) {
	prog := Program{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000}}
	data, err := json.Marshal(Config{Security: &Security{Seccomp: prog}})
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Security.Seccomp, prog) {
		t.Fatalf("round trip: %+v, want %+v (json %s)", back.Security.Seccomp, prog, data)
	}
	if err := json.Unmarshal([]byte(`{"security":{"capabilities":null,"seccomp":"AAAA"}}`), &back); err == nil {
		t.Fatal("a program of 3 bytes decoded")
	}
}
