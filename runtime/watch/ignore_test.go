package watch

import "testing"

func TestPatterns(t *testing.T) {
	ps := NewPatterns("/p", []string{
		"# comment",
		"*.log",
		"/build",
		"tmp/",
		"docs/**/*.md",
		"**/*.tmp",
		"!keep.log",
	})
	cases := []struct {
		path  string
		dir   bool
		want  bool
		about string
	}{
		{"/p/a.log", false, true, "unanchored at the top"},
		{"/p/src/deep/a.log", false, true, "unanchored at depth"},
		{"/p/keep.log", false, false, "negated"},
		{"/p/build", true, true, "anchored"},
		{"/p/build/out.o", false, true, "inside an ignored directory"},
		{"/p/src/build", true, false, "anchored: not below the top"},
		{"/p/tmp", true, true, "dir-only pattern on a dir"},
		{"/p/tmp", false, false, "dir-only pattern on a file"},
		{"/p/x/tmp/f", false, true, "file inside a dir-only match"},
		{"/p/docs/a/b/c.md", false, true, "double star"},
		{"/p/docs/c.md", false, true, "double star matches no directory"},
		{"/p/other/c.md", false, false, "double star anchored to docs"},
		{"/p/a/b/x.tmp", false, true, "leading double star"},
		{"/p/main.go", false, false, "not matched"},
		{"/elsewhere/a.log", false, false, "outside the base"},
	}
	for _, c := range cases {
		if got := ps.Match(c.path, c.dir); got != c.want {
			t.Errorf("%s (%s): Match = %v, want %v", c.path, c.about, got, c.want)
		}
	}
}
