package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/runtime"
)

type bufWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *bufWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *bufWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestLogsFollowAcrossRotation follows a console log while it rotates several times and
// checks that every line arrives once, in order, without its timestamp.
func TestLogsFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	rf, err := runtime.OpenRotatingFile(path, 300, 3)
	if err != nil {
		t.Fatal(err)
	}
	log := &runtime.StampWriter{W: rf}
	fmt.Fprintln(log, "before follow")

	out := &bufWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&logsCmd{Follow: true, Tail: 1}).show(ctx, path, "web | ", &lockedWriter{w: out})
	}()
	time.Sleep(300 * time.Millisecond)
	const n = 60 // 60 lines of ~45 bytes: several rotations of 300 bytes
	for i := 0; i < n; i++ {
		fmt.Fprintf(log, "line %03d\n", i)
		if i%5 == 0 {
			time.Sleep(250 * time.Millisecond) // let the follower see each file
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), fmt.Sprintf("line %03d", n-1)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	rf.Close()

	var want strings.Builder
	want.WriteString("web | before follow\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&want, "web | line %03d\n", i)
	}
	if out.String() != want.String() {
		t.Fatalf("followed:\n%s\nwant:\n%s", out.String(), want.String())
	}
}

func TestLogsTailAndTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	rf, err := runtime.OpenRotatingFile(path, 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	log := &runtime.StampWriter{W: rf, Now: func() time.Time { return at }}
	for i := 0; i < 5; i++ {
		fmt.Fprintf(log, "line %d\n", i)
	}
	rf.Close()

	out := &bufWriter{}
	(&logsCmd{Tail: 2}).show(context.Background(), path, "", &lockedWriter{w: out})
	if out.String() != "line 3\nline 4\n" {
		t.Errorf("--tail 2:\n%s", out.String())
	}
	out = &bufWriter{}
	(&logsCmd{Tail: 1, Timestamps: true}).show(context.Background(), path, "", &lockedWriter{w: out})
	if want := at.Local().Format(time.RFC3339Nano) + " line 4\n"; out.String() != want {
		t.Errorf("--timestamps: %q, want %q", out.String(), want)
	}
}

// writeLog writes lines to a fresh console log at path, each stamped with its time.
func writeLog(t *testing.T, path string, lines map[time.Time]string) {
	t.Helper()
	rf, err := runtime.OpenRotatingFile(path, 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	var times []time.Time
	for at := range lines {
		times = append(times, at)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for _, at := range times {
		w := &runtime.StampWriter{W: rf, Now: func() time.Time { return at }}
		fmt.Fprintln(w, lines[at])
	}
}

func TestLogsMergedSinceAndJSON(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	web, db := filepath.Join(dir, "web.log"), filepath.Join(dir, "db.log")
	writeLog(t, web, map[time.Time]string{at(1): "web 1", at(4): "web 4", at(5): "web 5"})
	writeLog(t, db, map[time.Time]string{at(2): "db 2", at(3): "db 3", at(6): "db 6"})
	sources := []logSource{{name: "web", path: web, prefix: "web | "}, {name: "db", path: db, prefix: "db  | "}}

	out := &bufWriter{}
	(&logsCmd{Tail: -1}).showAll(context.Background(), sources, &lockedWriter{w: out})
	want := "web | web 1\ndb  | db 2\ndb  | db 3\nweb | web 4\nweb | web 5\ndb  | db 6\n"
	if out.String() != want {
		t.Errorf("merged:\n%s\nwant:\n%s", out, want)
	}

	out = &bufWriter{}
	(&logsCmd{Tail: -1, since: at(4)}).showAll(context.Background(), sources, &lockedWriter{w: out})
	if want := "web | web 4\nweb | web 5\ndb  | db 6\n"; out.String() != want {
		t.Errorf("since t0+4s:\n%s\nwant:\n%s", out, want)
	}

	// --tail counts per sandbox, then the lines are merged.
	out = &bufWriter{}
	(&logsCmd{Tail: 1}).showAll(context.Background(), sources, &lockedWriter{w: out})
	if want := "web | web 5\ndb  | db 6\n"; out.String() != want {
		t.Errorf("tail 1:\n%s\nwant:\n%s", out, want)
	}

	out = &bufWriter{}
	(&logsCmd{Tail: 2, JSON: true}).showAll(context.Background(), sources, &lockedWriter{w: out})
	type jsonLine struct{ Sandbox, Time, Line string }
	var got []jsonLine
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v jsonLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, v)
	}
	wantJSON := []jsonLine{
		{"db", "2026-11-29T16:00:03Z", "db 3"},
		{"web", "2026-11-29T16:00:04Z", "web 4"},
		{"web", "2026-11-29T16:00:05Z", "web 5"},
		{"db", "2026-11-29T16:00:06Z", "db 6"},
	}
	if !slices.Equal(got, wantJSON) {
		t.Errorf("--json:\n%+v\nwant:\n%+v", got, wantJSON)
	}
}

func TestLogsJSONKeepsControlCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	writeLog(t, path, map[time.Time]string{time.Unix(1, 0): "\x1b]0;pwned\x07title"})
	out := &bufWriter{}
	(&logsCmd{Tail: -1, JSON: true, escape: true}).showAll(context.Background(), []logSource{{name: "x", path: path}}, &lockedWriter{w: out})
	if strings.ContainsRune(out.String(), 0x1b) || !strings.Contains(out.String(), `\u001b]0;pwned\u0007title`) {
		t.Errorf("--json: %q", out)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                            {},
		"10m":                         now.Add(-10 * time.Minute),
		"1h30m":                       now.Add(-90 * time.Minute),
		"2026-11-29T15:00:00Z":        time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC),
		"2026-11-29T15:00:00.5+01:00": time.Date(2026, 11, 29, 14, 0, 0, 500e6, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "10"} {
		if _, err := parseSince(bad, now); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("parseSince(%q): %v", bad, err)
		}
	}
}

func TestE2ELogsMergedSinceJSON(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "a" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo a1; sleep 2; echo a2; exec sleep 3600"]
  network { scope = "none" }
}
sandbox "b" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 1; echo b1; sleep 2; echo b2; exec sleep 3600"]
  network { scope = "none" }
}
`)
	p.must("up")
	p.eventually("b2 written", func() bool { return strings.Contains(p.must("logs", "b"), "b2") })
	var payload []string
	for _, l := range strings.Split(p.must("logs"), "\n") {
		if !strings.Contains(l, "[sbx]") && l != "" {
			payload = append(payload, l)
		}
	}
	if want := []string{"a | a1", "b | b1", "a | a2", "b | b2"}; !slices.Equal(payload, want) {
		t.Errorf("sbx logs of two sandboxes: %q, want %q", payload, want)
	}
	out := p.must("logs", "--json", "--since", "10m", "b")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct{ Sandbox, Time, Line string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if at, err := time.Parse(time.RFC3339Nano, v.Time); err != nil || time.Since(at) > time.Minute || v.Sandbox != "b" {
			t.Errorf("--json line %q", l)
		}
		lines = append(lines, v.Line)
	}
	if !slices.Contains(lines, "b1") || !slices.Contains(lines, "b2") {
		t.Errorf("--json --since 10m: %q", lines)
	}
	if out := p.must("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); out != "" {
		t.Errorf("--since in an hour: %q", out)
	}
	if r := p.sbx("logs", "--since", "yesterday"); r.code != 1 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("--since yesterday: %d %s", r.code, r.stderr)
	}
}
