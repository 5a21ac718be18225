package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
