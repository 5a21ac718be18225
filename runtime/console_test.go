package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotatingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	r, err := OpenRotatingFile(path, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes: two fit in 100, a third rotates
	var all bytes.Buffer
	for i := 0; i < 10; i++ {
		l := append([]byte{byte('0' + i)}, line[1:]...)
		all.Write(l)
		if _, err := r.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	files := LogFiles(path, 3)
	if len(files) != 3 {
		t.Fatalf("files = %v, want 3", files)
	}
	var kept bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 {
			t.Errorf("%s has %d bytes, over the limit", f, len(b))
		}
		kept.Write(b)
	}
	// The newest lines are kept, in order, and nothing else.
	if !bytes.HasSuffix(all.Bytes(), kept.Bytes()) {
		t.Errorf("kept logs are not the tail of what was written:\n%s", kept.String())
	}
	if kept.Len() != 6*40 {
		t.Errorf("kept %d bytes, want %d", kept.Len(), 6*40)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("a fourth file exists: %v", err)
	}

	// Reopening appends to the live file.
	r, err = OpenRotatingFile(path, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("y\n")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b, _ := os.ReadFile(path)
	if !bytes.HasSuffix(b, []byte("y\n")) || len(b) != 82 {
		t.Errorf("live file after reopen = %q", b)
	}
}

func TestStampWriter(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 29, 16, 0, 0, 123456000, time.UTC)
	w := &StampWriter{W: &buf, Now: func() time.Time { return at }}
	for _, s := range []string{"hel", "lo\nwor", "ld\n", "\n"} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := "2026-11-29T16:00:00.123456Z hello\n2026-11-29T16:00:00.123456Z world\n2026-11-29T16:00:00.123456Z \n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
	ts, text := SplitStamp([]byte("2026-11-29T16:00:00.123456Z hello"))
	if !ts.Equal(at) || string(text) != "hello" {
		t.Errorf("SplitStamp = %v %q", ts, text)
	}
	if ts, text := SplitStamp([]byte("plain line")); !ts.IsZero() || string(text) != "plain line" {
		t.Errorf("SplitStamp(plain) = %v %q", ts, text)
	}
}
