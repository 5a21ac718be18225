package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpExtractRefusesEscapes: what a sandbox sends cannot write outside the copy: not
// through a symlink it sent, not through one already on the host, not with '..' or another
// top name; set-user-ID bits are dropped.
func TestCpExtractRefusesEscapes(t *testing.T) {
	type entry struct {
		name, link string
		typ        byte
		mode       int64
	}
	build := func(entries ...entry) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range entries {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link}
			if e.typ == tar.TypeReg {
				h.Size = 2
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if e.typ == tar.TypeReg {
				_, _ = tw.Write([]byte("x\n"))
			}
		}
		tw.Close()
		return &b
	}
	for _, tc := range []struct {
		name    string
		entries []entry
		want    string
	}{
		{"through a sent symlink", []entry{
			{name: "top/", typ: tar.TypeDir, mode: 0o755},
			{name: "top/out", typ: tar.TypeSymlink, link: "../outside"},
			{name: "top/out/owned", typ: tar.TypeReg, mode: 0o644},
		}, "is not a directory (a symlink or a file)"},
		{"dot-dot", []entry{
			{name: "top/", typ: tar.TypeDir, mode: 0o755},
			{name: "top/../owned", typ: tar.TypeReg, mode: 0o644},
		}, "outside top"},
		{"another top", []entry{
			{name: "other", typ: tar.TypeReg, mode: 0o644},
		}, "outside top"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "in")
			if err := os.MkdirAll(filepath.Join(base, "outside"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractHostTar(build(tc.entries...), dir, "top", false, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			for _, p := range []string{filepath.Join(base, "outside", "owned"), filepath.Join(base, "owned"), filepath.Join(dir, "owned")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}

	dir := t.TempDir()
	err := extractHostTar(build(entry{name: "top", typ: tar.TypeReg, mode: 0o4755}), dir, "top", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "top")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("mode %v %v, want 0755 without set-user-ID", fi.Mode(), err)
	}
}

func TestParseCpLoc(t *testing.T) {
	for in, want := range map[string]cpLoc{
		"web:/etc":   {"web", "/etc"},
		"web:tmp/x":  {"web", "tmp/x"},
		"./a:b":      {"", "./a:b"},
		"/abs:x":     {"", "/abs:x"},
		"file":       {"", "file"},
		"my_db-2:/x": {"my_db-2", "/x"},
	} {
		if got := parseCpLoc(in); got != want {
			t.Errorf("parseCpLoc(%q) = %+v, want %+v", in, got, want)
		}
	}
}
