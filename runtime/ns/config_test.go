package ns

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Name: "db", Layers: []string{"/l"}, Argv: []string{"true"}, InitLayer: "/i"}
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
		{func(c *Config) { c.InitLayer = "" }, "InitLayer"},
		{func(c *Config) { c.InitLayer, c.UpperDir, c.WorkDir = "", "/s/upper", "/s/work" }, ""},
		{func(c *Config) { c.Layers = []string{"rel"} }, "not an absolute path"},
		{func(c *Config) { c.ControlDir = "ctl" }, "not an absolute path"},
		{func(c *Config) { c.Mounts = []Mount{{Source: "/s", Target: "t"}} }, "must be absolute"},
		{func(c *Config) { c.Mounts = []Mount{{Source: "/s", Target: "/.sbx/ctl"}} }, "sbx's init directory"},
		{func(c *Config) { c.Mounts = []Mount{{Source: "/s", Target: "/"}} }, "root"},
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
	if got := (&Config{UpperDir: "/s/rw/upper"}).initLayer(); got != "/s/rw/init" {
		t.Errorf("default init layer %q", got)
	}
}
