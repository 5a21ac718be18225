package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestE2EPullProgress pulls the test image from its OCI layout with sbx pull, once with
// stdout a pipe (plain lines) and once in a pseudo-terminal (mpb's bars): both name the image,
// say it is imported, never downloaded, and end with its digest.
func TestE2EPullProgress(t *testing.T) {
	p := newProject(t, "sandbox \"a\" {\n  image = \"IMAGE\"\n}\n")
	ref := "oci-layout:" + p.image + ":latest"
	lp, err := layout.FromPath(p.image)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	digest := m.Manifests[0].Digest.String()

	out := p.must("pull")
	t.Logf("plain:\n%s", out)
	for _, re := range []string{
		`(?m)^` + regexp.QuoteMeta(ref) + `: importing \d+ layers? \(`,
		`(?m)^` + regexp.QuoteMeta(ref) + `: layer 1/\d+ [0-9a-f]{12} imported \(`,
		`(?m)^` + regexp.QuoteMeta(ref) + `: imported .* in .*/s\)$`,
		`(?m)^` + regexp.QuoteMeta(ref) + ` ` + digest + `$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("plain output: no line matches %s", re)
		}
	}
	if strings.Contains(out, "download") {
		t.Errorf("a local import said download:\n%s", out)
	}

	// Again in a terminal, into a fresh store.
	p.home = t.TempDir()
	cmd := exec.Command(p.bin, "-C", p.dir, "pull")
	cmd.Env = append(os.Environ(), "SBX_HOME="+p.home, "NO_COLOR=1", "SBX_DRIVER=ns", "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ptmx); err != nil && !errors.Is(err, os.ErrClosed) && !strings.Contains(err.Error(), "input/output error") {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sbx pull in a terminal: %v\n%q", err, buf.String())
	}
	raw := buf.String()
	if !strings.Contains(raw, "\x1b[") {
		t.Errorf("no terminal rendering (mpb draws with escape sequences):\n%q", raw)
	}
	// The last frame mpb drew follows its last "clear to the end of the screen".
	last := raw[strings.LastIndex(raw, "\x1b[J")+1:]
	if !regexp.MustCompile(regexp.QuoteMeta(ref) + ` +imported +\[=+\] +[0-9.]+ [KM]iB / [0-9.]+ [KM]iB +[0-9.]+ [KMG]?i?B/s`).MatchString(last) {
		t.Errorf("the image's line in the last frame does not say imported with bytes and speed:\n%q", last)
	}
	if !strings.Contains(last, ref+" "+digest) {
		t.Errorf("no digest line after the bars:\n%q", last)
	}
	if strings.Contains(raw, "download") {
		t.Errorf("a local import said download:\n%q", raw)
	}
}
