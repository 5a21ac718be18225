package runtime

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/lang"
)

func TestResolveProcess(t *testing.T) {
	img := ImageConfig{
		Entrypoint: []string{"docker-entrypoint.sh"},
		Cmd:        []string{"postgres"},
		Env:        []string{"PATH=/usr/bin:/bin", "PGDATA=/var/lib/pg", "LANG=C"},
		WorkingDir: "/var/lib",
		User:       "postgres",
	}
	cases := []struct {
		name    string
		sb      lang.Sandbox
		argv    []string
		env     []string
		workdir string
		user    string
	}{
		{
			name: "image defaults",
			argv: []string{"docker-entrypoint.sh", "postgres"},
			env:  []string{"PATH=/usr/bin:/bin", "PGDATA=/var/lib/pg", "LANG=C"}, workdir: "/var/lib", user: "postgres",
		},
		{
			name: "command replaces CMD only",
			sb:   lang.Sandbox{Command: []string{"postgres", "-c", "fsync=off"}},
			argv: []string{"docker-entrypoint.sh", "postgres", "-c", "fsync=off"},
			env:  []string{"PATH=/usr/bin:/bin", "PGDATA=/var/lib/pg", "LANG=C"}, workdir: "/var/lib", user: "postgres",
		},
		{
			name: "entrypoint drops CMD",
			sb:   lang.Sandbox{Entrypoint: []string{"/bin/sh"}, Workdir: "/tmp", User: "0:0", Env: map[string]string{"LANG": "C.UTF-8", "A": "1"}},
			argv: []string{"/bin/sh"},
			env:  []string{"PATH=/usr/bin:/bin", "PGDATA=/var/lib/pg", "LANG=C.UTF-8", "A=1"}, workdir: "/tmp", user: "0:0",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			argv, env, wd, user, err := ResolveProcess(&c.sb, img)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(argv, c.argv) || !reflect.DeepEqual(env, c.env) || wd != c.workdir || user != c.user {
				t.Errorf("got %q %q %q %q\nwant %q %q %q %q", argv, env, wd, user, c.argv, c.env, c.workdir, c.user)
			}
		})
	}

	argv, env, wd, _, err := ResolveProcess(&lang.Sandbox{Command: []string{"sh"}}, ImageConfig{})
	if err != nil || !reflect.DeepEqual(argv, []string{"sh"}) || env[0] != defaultPath || wd != "/" {
		t.Errorf("bare image: %q %q %q %v", argv, env, wd, err)
	}
	if _, _, _, _, err := ResolveProcess(&lang.Sandbox{}, ImageConfig{}); !errors.Is(err, ErrNoCommand) {
		t.Errorf("nothing to run: err = %v", err)
	}
}

func TestProjectIDIsBounded(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	a, b := ProjectID(long, "/srv/a"), ProjectID(long, "/srv/b")
	if len(a) > 64+9 || !utf8.ValidString(a) {
		t.Errorf("ProjectID of a long name = %q (%d bytes)", a, len(a))
	}
	if a == b {
		t.Errorf("two directories share the ID %q", a)
	}
	if got := ProjectID("app", "/srv/a"); !strings.HasPrefix(got, "app-") || len(got) != len("app-")+8 {
		t.Errorf("ProjectID = %q", got)
	}
}
