package runtime

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/runtime/spec"
)

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := WaitReady(context.Background(), TCPProbe{Addr: addr}, time.Second, 10*time.Millisecond, nil); err != nil {
		t.Fatalf("listening port not ready: %v", err)
	}
	ln.Close()
	err = WaitReady(context.Background(), TCPProbe{Addr: addr}, 100*time.Millisecond, 10*time.Millisecond, nil)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("closed port: err = %v, want ErrNotReady", err)
	}
}

func TestHTTPProbe(t *testing.T) {
	var calls atomic.Int32
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host = r.Host
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	// The probe dials what the driver gives it (the guest), whatever the URL's host says.
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	p := HTTPProbe{Spec: spec.HTTPProbe{Port: 8080, Path: "/health", Host: "127.0.0.1:8080"}, Dial: dial}
	if err := WaitReady(context.Background(), p, 2*time.Second, 10*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || host != "127.0.0.1:8080" {
		t.Errorf("calls = %d, want 3 (two 503 then 204); Host %q", calls.Load(), host)
	}
	bad := HTTPProbe{Spec: spec.HTTPProbe{Port: 8080, Path: "/nope"}, Dial: dial}
	if err := bad.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "GET /nope answered 404") {
		t.Errorf("a 404 is not ready: %v", err)
	}
}

func TestLogProbe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	if err := os.WriteFile(path, []byte("ready to accept connections (old run)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	p := LogProbe{Path: path, Pattern: regexp.MustCompile(`ready to accept`), Offset: st.Size()}
	if err := p.Check(context.Background()); err == nil {
		t.Fatal("a line before the offset counted")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("booting\ndatabase system is ready to accept connections\n")
		f.Close()
	}()
	if err := WaitReady(context.Background(), p, 2*time.Second, 10*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
}

func TestWaitReadyDeadSandboxFailsFast(t *testing.T) {
	dead := errors.New("exited with code 3")
	err := WaitReady(context.Background(), TCPProbe{Addr: "127.0.0.1:1"}, time.Minute, 10*time.Millisecond, func() error { return dead })
	if !errors.Is(err, dead) {
		// Waiting out the minute would have returned ErrNotReady instead.
		t.Fatalf("err = %v, want the death reason", err)
	}
}

// The supervisor's own notes in the console never satisfy a log probe, even when they quote
// its pattern.
func TestLogProbeIgnoresSbxNotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	note := "[sbx] unready: log: no line matches \"ready\" yet\n"
	if err := os.WriteFile(path, []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	p := LogProbe{Path: path, Pattern: regexp.MustCompile(`ready`)}
	if err := p.Check(context.Background()); err == nil {
		t.Fatal("sbx's own note satisfied the probe")
	}
}
