package image

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestProgressWriterPlain feeds reports with a fake clock: one line when
// an image starts, one per layer fetched, one every few seconds with
// percentage, speed and time left, one at the end; "importing" for a local
// image, one line for an image that was all there.
func TestProgressWriterPlain(t *testing.T) {
	var buf bytes.Buffer
	pw := NewProgress(&buf, false)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	pw.now = func() time.Time { return now }
	d := "sha256:" + strings.Repeat("ab", 32)
	e := "sha256:" + strings.Repeat("cd", 32)
	for _, step := range []struct {
		at time.Duration
		p  LayerProgress
	}{
		{0, LayerProgress{Ref: "reg/app:1", Layers: 2, Digest: d, Total: 2048, State: StateWaiting}},
		{0, LayerProgress{Ref: "reg/app:1", Index: 1, Layers: 2, Digest: e, Total: 1024, State: StateWaiting}},
		{0, LayerProgress{Ref: "reg/app:1", Index: 1, Layers: 2, Digest: e, Total: 1024, Done: 1024, State: StateCached}},
		{0, LayerProgress{Ref: "reg/app:1", Layers: 2, Digest: d, Total: 2048, State: StateDownloading}},
		{2 * time.Second, LayerProgress{Ref: "reg/app:1", Layers: 2, Digest: d, Total: 2048, Done: 512, State: StateDownloading}},
		{6 * time.Second, LayerProgress{Ref: "reg/app:1", Layers: 2, Digest: d, Total: 2048, Done: 1024, State: StateDownloading}},
		{8 * time.Second, LayerProgress{Ref: "reg/app:1", Layers: 2, Digest: d, Total: 2048, Done: 2048, State: StateDone}},

		{8 * time.Second, LayerProgress{Ref: "oci-layout:/img:latest", Layers: 1, Digest: d, Total: 100, State: StateWaiting, Local: true}},
		{8 * time.Second, LayerProgress{Ref: "oci-layout:/img:latest", Layers: 1, Digest: d, Total: 100, State: StateDownloading, Local: true}},
		{9 * time.Second, LayerProgress{Ref: "oci-layout:/img:latest", Layers: 1, Digest: d, Total: 100, Done: 100, State: StateDone, Local: true}},

		{9 * time.Second, LayerProgress{Ref: "reg/cached:1", Layers: 1, Digest: e, Total: 10, Done: 10, State: StateCached}},
	} {
		now = t0.Add(step.at)
		pw.Update(step.p)
	}
	pw.Wait()
	want := "reg/app:1: downloading 2 layers (3.0 KiB)\n" +
		"reg/app:1: downloading 1.0 KiB of 2.0 KiB (50%), 170 B/s, about 6s left\n" +
		"reg/app:1: layer 1/2 abababababab downloaded (2.0 KiB)\n" +
		"reg/app:1: downloaded 2.0 KiB in 8s (256 B/s), 1 of 2 layers cached\n" +
		"oci-layout:/img:latest: importing 1 layer (100 B)\n" +
		"oci-layout:/img:latest: layer 1/1 abababababab imported (100 B)\n" +
		"oci-layout:/img:latest: imported 100 B in 1s (100 B/s)\n" +
		"reg/cached:1: cached (1 layer, 10 B)\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// slowBlobs sends blob bodies 1 KiB at a time with a pause, so that a
// terminal renderer draws frames while layers are in flight.
type slowBlobs struct{ next http.Handler }

type slowWriter struct{ http.ResponseWriter }

func (w slowWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		c := min(len(b), 1024)
		m, err := w.ResponseWriter.Write(b[:c])
		n += m
		if err != nil {
			return n, err
		}
		w.ResponseWriter.(http.Flusher).Flush()
		time.Sleep(40 * time.Millisecond)
		b = b[c:]
	}
	return n, nil
}

func (s slowBlobs) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if blobPathRE.MatchString(req.URL.Path) && req.Method == http.MethodGet {
		w = slowWriter{w}
	}
	s.next.ServeHTTP(w, req)
}

// pullBoth pulls a 3-layer image from a slow registry and the test image
// from an OCI layout, reporting to pw, and returns both references.
func pullBoth(t *testing.T, pw Progress) (remote, local string) {
	t.Helper()
	reg := newRegistry(t, "slow", slowBlobs{registry.New(registry.Logger(log.New(io.Discard, "", 0)))})
	remote = reg.push(t, "many", manyLayers(t, 3))
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(testImage(t)); err != nil {
		t.Fatal(err)
	}
	local = "oci-layout:" + filepath.Join(dir, "layout")
	s := openStore(t, filepath.Join(dir, "store"))
	for _, ref := range []string{remote, local} {
		if _, err := s.Pull(context.Background(), ref, WithProgress(pw)); err != nil {
			t.Fatal(err)
		}
	}
	// Pulled again: all there.
	if _, err := s.Pull(context.Background(), remote, WithProgress(pw)); err != nil {
		t.Fatal(err)
	}
	return remote, local
}

// TestProgressPlainPull: real pulls, rendered as plain lines.
func TestProgressPlainPull(t *testing.T) {
	var buf bytes.Buffer
	pw := NewProgress(&buf, false)
	remote, local := pullBoth(t, pw)
	pw.Wait()
	out := buf.String()
	t.Logf("output:\n%s", out)
	for _, re := range []string{
		`(?m)^` + regexp.QuoteMeta(remote) + `: downloading 3 layers \(.* KiB\)$`,
		`(?m)^` + regexp.QuoteMeta(remote) + `: downloaded .* KiB in .* \(.*/s\)$`,
		`(?m)^` + regexp.QuoteMeta(local) + `: importing 2 layers`,
		`(?m)^` + regexp.QuoteMeta(local) + `: layer 2/2 [0-9a-f]{12} imported`,
		`(?m)^` + regexp.QuoteMeta(local) + `: imported .* in .*/s\)$`,
		`(?m)^` + regexp.QuoteMeta(remote) + `: cached \(3 layers, .* KiB\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matches %s", re)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, local) && strings.Contains(line, "download") {
			t.Errorf("a local import said downloading: %q", line)
		}
	}
}

// lastFrame returns the lines mpb drew last: what follows its final
// "cursor up, clear to the end of the screen".
func lastFrame(out string) []string {
	if i := strings.LastIndex(out, "\x1b[J"); i >= 0 {
		out = out[i+len("\x1b[J"):]
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestProgressTerminal renders real pulls to a pseudo-terminal: while
// layers are in flight each has its line under its image's; at the end one
// line per image remains, with its name, what was done, bytes and speed.
func TestProgressTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 200}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, ptmx) // ends with EIO once the terminal side is closed
		close(copied)
	}()
	pw := NewProgress(tty, true)
	remote, local := pullBoth(t, pw)
	pw.Wait()
	tty.Close()
	<-copied
	raw := out.String()
	if !regexp.MustCompile(`layer [1-3]/3 [0-9a-f]{12} +downloading`).MatchString(raw) {
		t.Errorf("no layer line was drawn while downloading:\n%q", raw)
	}
	frame := lastFrame(raw)
	t.Logf("last frame:\n%s", strings.Join(frame, "\n"))
	if len(frame) != 3 {
		t.Fatalf("last frame has %d lines, want one per image pulled:\n%q", len(frame), raw)
	}
	for i, want := range []*regexp.Regexp{
		regexp.MustCompile(regexp.QuoteMeta(remote) + ` +downloaded .*KiB.*/s`),
		regexp.MustCompile(regexp.QuoteMeta(local) + ` +imported .*[KM]iB.*/s`),
		regexp.MustCompile(regexp.QuoteMeta(remote) + ` +cached `),
	} {
		if !want.MatchString(frame[i]) {
			t.Errorf("line %d = %q, want %s", i+1, frame[i], want)
		}
	}
	if strings.Contains(raw, local+" downloading") || regexp.MustCompile(regexp.QuoteMeta(local)+` +download`).MatchString(raw) {
		t.Errorf("the local import was shown as a download")
	}
}
