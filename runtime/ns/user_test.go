package ns

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	const passwd = `# comment
root:x:0:0:root:/root:/bin/sh
broken line
app:x:1000:1000::/home/app:/bin/sh
nohome:x:1001:1001:::/bin/sh
`
	const group = `root:x:0:
app:x:1000:
docker:x:999:app,other
wheel:x:10:app
bad:x:notanumber:app
`
	for _, tc := range []struct {
		spec string
		want ids
		err  string
	}{
		{"", ids{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}, ""},
		{"root", ids{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}, ""},
		{"app", ids{UID: 1000, GID: 1000, Groups: []uint32{1000, 999, 10}, Home: "/home/app"}, ""},
		{"1000", ids{UID: 1000, GID: 1000, Groups: []uint32{1000, 999, 10}, Home: "/home/app"}, ""},
		{"app:docker", ids{UID: 1000, GID: 999, Groups: []uint32{999}, Home: "/home/app"}, ""},
		{"1000:5", ids{UID: 1000, GID: 5, Groups: []uint32{5}, Home: "/home/app"}, ""},
		{"nohome", ids{UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/"}, ""},
		{"5000", ids{UID: 5000, GID: 0, Groups: []uint32{0}, Home: "/"}, ""},
		{"5000:5000", ids{UID: 5000, GID: 5000, Groups: []uint32{5000}, Home: "/"}, ""},
		{"ghost", ids{}, `user "ghost" not found`},
		{"app:ghost", ids{}, `group "ghost" not found`},
	} {
		got, err := resolveUser(tc.spec, strings.NewReader(passwd), strings.NewReader(group))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	// An image without passwd and group files still runs numeric users.
	if got, err := resolveUser("7:8", nil, nil); err != nil || got.UID != 7 || got.GID != 8 {
		t.Errorf("no files: %+v, %v", got, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Name: "db", Layers: []string{"/l"}, Argv: []string{"true"}}
	for _, tc := range []struct {
		modify func(*Config)
		err    string
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.Name = "" }, "name is empty"},
		{func(c *Config) { c.Name = "a/b" }, "cgroup name"},
		{func(c *Config) { c.Argv = nil }, "no command"},
		{func(c *Config) { c.Layers = nil }, "no root file system"},
		{func(c *Config) { c.RootDir = "/r" }, "both layers"},
		{func(c *Config) { c.UpperDir = "/u" }, "go together"},
		{func(c *Config) { c.Layers = []string{"rel"} }, "not an absolute path"},
		{func(c *Config) { c.Mounts = []Mount{{Source: "/s", Target: "t"}} }, "must be absolute"},
		{func(c *Config) { c.Workdir = "w" }, "not absolute"},
		{func(c *Config) { c.MemoryMiB = -1 }, "negative"},
	} {
		c := ok
		tc.modify(&c)
		err := c.validate()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: error %v, want %q", c, err, tc.err)
		}
	}
}
