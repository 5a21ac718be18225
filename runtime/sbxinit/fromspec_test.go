package sbxinit

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/sbx-dev/sbx/runtime/spec"
)

func TestFromSpec(t *testing.T) {
	rs := &spec.RunSpec{
		Process:   spec.Process{Argv: []string{"app", "--flag"}, Env: []string{"PATH=/bin", `Q="x"`}, Workdir: "/srv", User: "app:staff", Hostname: "web"},
		Resources: spec.Resources{Rlimits: []spec.Rlimit{{Name: "NOFILE", Resource: 7, Soft: 1024, Hard: 4096}}},
		Network: spec.Network{
			Scope:  spec.ScopeGroup,
			Subnet: netip.MustParsePrefix("10.88.0.0/24"),
			IP:     netip.MustParseAddr("10.88.0.10"),
			Peers:  map[string]netip.Addr{"db": netip.MustParseAddr("10.88.0.11"), "cache": netip.MustParseAddr("10.88.0.12")},
		},
	}
	want := Config{
		Version:  Version,
		Process:  Process{Argv: []string{"app", "--flag"}, Env: []string{"PATH=/bin", `Q="x"`}, Cwd: "/srv", User: User{Spec: "app:staff"}},
		Hostname: "web",
		Rlimits:  []Rlimit{{Name: "NOFILE", Resource: 7, Soft: 1024, Hard: 4096}},
		Network: &Network{
			Interface: "eth0",
			Address:   netip.MustParsePrefix("10.88.0.10/24"),
			Hosts:     []Host{{"cache", netip.MustParseAddr("10.88.0.12")}, {"db", netip.MustParseAddr("10.88.0.11")}},
		},
		Control: Control{UnixPath: "/.sbx/ctl/init.sock"},
		HideDir: true,
	}
	got := FromSpec(rs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromSpec:\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	rs.Network = spec.Network{Scope: spec.ScopeNone}
	if n := FromSpec(rs).Network; n == nil || n.Interface != "" {
		t.Errorf("scope none: %+v, want lo only", n)
	}
}
