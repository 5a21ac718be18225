package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
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
