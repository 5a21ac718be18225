package planner

import (
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/lang"
)

// A mount that leaves the project directory is named in the plan, sensitive sources hidden.
func TestPlanShowsMountsOutsideTheProject(t *testing.T) {
	sb := &lang.Sandbox{Name: "web", Image: "busybox", Mounts: []lang.Mount{
		{Source: "/srv/project/site", Target: "/srv"},
		{Source: "/home/me/data", Target: "/data", ReadOnly: true, OutsideProject: true},
		{Source: "/home/me/secret", Target: "/secret", OutsideProject: true},
	}, Sensitive: []string{"mounts[2].source"}}
	p := &Plan{Steps: []Step{{Sandbox: "web", Action: ActionCreate, Desired: sb}}}
	var b strings.Builder
	if err := p.Render(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# reaches outside the project: /home/me/data → /data (read-only)",
		"# reaches outside the project: (sensitive) → /secret",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/srv/project/site") || strings.Contains(out, "/home/me/secret") {
		t.Errorf("plan shows what it should not:\n%s", out)
	}
}
