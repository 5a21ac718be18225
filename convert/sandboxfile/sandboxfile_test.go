package sandboxfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/sbx-dev/sbx/lang"
)

// TestBytesValidates writes every kind of block and attribute and checks that the result is
// formatted and loads without diagnostics.
func TestBytesValidates(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.env"), []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &File{
		Header:   []string{"Imported by a test.", "", "second paragraph"},
		Project:  &Project{Name: "shop"},
		Networks: []*Network{{Name: "back", Subnet: "10.1.0.0/24", Comments: []string{"the backend"}}},
		Sandboxes: []*Sandbox{
			{Name: "db", Image: "postgres:16", Ready: &Ready{TCP: 5432, Interval: "5s"},
				Network: &NetworkAttach{Scope: "group", Group: "back", IP: "10.1.0.5"}},
			{
				Name: "web", Comments: []string{"web server"}, Image: "nginx:1.27", CPUs: 2, Memory: Memory(2048),
				Entrypoint: []string{}, Command: []string{"nginx", "-g", "daemon off;"}, Workdir: "/srv", User: "101:101",
				Env:      map[string]string{"A": "x${y}", "dotted.key": "%{z}", "PLAIN": "v"},
				EnvFiles: []string{"web.env"}, Rlimits: map[string]string{"NOFILE": "1024:4096", "NPROC": "512"},
				Restart: "always", StopTimeout: "20s", DependsOn: []string{"db"},
				Mounts: []*Mount{{Source: "./site", Target: "/srv", ReadOnly: true, Comments: []string{"the site"}}},
				Ports: []*Port{{Host: 8080, Guest: 80, HostIP: "127.0.0.1", Comments: []string{"was 0.0.0.0"}},
					{Host: 53, Guest: 53, Protocol: "udp"}},
				Network: &NetworkAttach{Scope: "public", Group: "back"},
				Ready:   &Ready{HTTP: "http://localhost:80/", Timeout: "30s"},
				Notes:   []string{"not mapped: privileged"},
			},
		},
	}
	src := f.Bytes()
	if !bytes.Equal(hclwrite.Format(src), src) {
		t.Errorf("output is not formatted:\n%s", src)
	}
	path := filepath.Join(dir, "Sandboxfile")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(path, lang.WithCwd(dir), lang.WithEnviron(nil))
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags.Error(), src)
	}
	web := cfg.Sandbox("web")
	if web.Env["A"] != "x${y}" || web.Env["dotted.key"] != "%{z}" || web.Env["PLAIN"] != "v" {
		t.Errorf("env = %v", web.Env)
	}
	if web.Entrypoint == nil || len(web.Entrypoint) != 0 {
		t.Errorf("entrypoint = %#v, want empty", web.Entrypoint)
	}
	if len(web.Rlimits) != 2 || web.Rlimits[1].Soft != 512 {
		t.Errorf("rlimits = %+v", web.Rlimits)
	}
	if web.MemoryMiB != 2048 || web.CPUs != 2 || web.Restart != "always" || len(web.DependsOn) != 1 {
		t.Errorf("web = %+v", web)
	}
	if web.Ports[0].Host != 8080 || web.Ports[1].Protocol != "udp" || web.Network.Group != "back" {
		t.Errorf("ports/network = %+v %+v", web.Ports, web.Network)
	}
	t.Logf("\n%s", src)
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"web": "web", "my.svc": "my-svc", "1st": "s1st", "a b": "a-b", "": "s",
	} {
		if got := Name(in, "s"); got != want || !ValidName(got) {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
