package convert

import (
	"errors"
	"strings"
	"testing"
)

func TestSensitiveHostPath(t *testing.T) {
	for p, refused := range map[string]bool{
		"/":                    true,
		"/etc":                 true,
		"/etc/nginx":           true,
		"/var":                 true, // contains /var/run
		"/var/run/docker.sock": true,
		"/home/dev/.ssh":       true,
		"/home":                true,
		"/srv/data":            false,
		"/proj/data":           false,
		"/proj":                false,
		"/root/proj/data":      false, // inside the project, wherever it is
		"/root/other":          true,
	} {
		project := "/proj"
		if strings.HasPrefix(p, "/root/proj") {
			project = "/root/proj"
		}
		if got := SensitiveHostPath(p, project) != ""; got != refused {
			t.Errorf("SensitiveHostPath(%q) refused = %v, want %v", p, got, refused)
		}
	}
}

func TestCheckYAML(t *testing.T) {
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	if err := CheckYAML([]byte(bomb), "f.yml"); !errors.Is(err, ErrYAMLBomb) {
		t.Errorf("bomb: %v", err)
	}
	if err := CheckYAML([]byte("a: &a [1, 2]\nb: *a\nc: *a\n---\nd: 1\n"), "f.yml"); err != nil {
		t.Errorf("ordinary aliases: %v", err)
	}
	if err := CheckYAML([]byte("a: [\n"), "f.yml"); err == nil || !strings.HasPrefix(err.Error(), "f.yml: ") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestReadAll(t *testing.T) {
	if _, err := ReadAll(strings.NewReader(strings.Repeat("x", MaxInputSize+1)), "big"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v", err)
	}
	if b, err := ReadAll(strings.NewReader("ok"), "small"); err != nil || string(b) != "ok" {
		t.Errorf("%q %v", b, err)
	}
}
