package image

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// staller wraps a registry: the victim blob's first stalls GETs (all,
// when stalls < 0) go quiet, before the headers or halfway through the
// body, until the client gives up.
type staller struct {
	next http.Handler

	mu            sync.Mutex
	victim        string
	stalls        int
	beforeHeaders bool
	ranges        []string
}

func (s *staller) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	m := blobPathRE.FindStringSubmatch(req.URL.Path)
	s.mu.Lock()
	stall := m != nil && req.Method == http.MethodGet && m[1] == s.victim && s.stalls != 0
	if m != nil && m[1] == s.victim {
		s.ranges = append(s.ranges, req.Header.Get("Range"))
	}
	if stall && s.stalls > 0 {
		s.stalls--
	}
	before := s.beforeHeaders
	s.mu.Unlock()
	if !stall {
		s.next.ServeHTTP(w, req)
		return
	}
	if !before {
		rec := httptest.NewRecorder()
		s.next.ServeHTTP(rec, req)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
	}
	// Quiet until the client hangs up.
	<-req.Context().Done()
}

func (s *staller) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// TestStalledRegistry: a registry that goes quiet while a layer downloads
// is given up on after the idle timeout, and the download resumed with a
// Range request from where it stopped; one that stays quiet fails the
// pull with an error naming the blob and the registry, and leaves nothing.
func TestStalledRegistry(t *testing.T) {
	img := manyLayers(t, 2)
	victim := blobsOf(t, img)[2]
	for _, c := range []struct {
		name          string
		stalls        int
		beforeHeaders bool
	}{
		{name: "mid-body", stalls: 2},
		{name: "before-headers", stalls: 1, beforeHeaders: true},
		{name: "for-good", stalls: -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &staller{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
			reg := newRegistry(t, "stalling", st)
			ref := reg.push(t, "stall", img)
			st.mu.Lock()
			st.victim, st.stalls, st.beforeHeaders = victim, c.stalls, c.beforeHeaders
			st.mu.Unlock()
			root := t.TempDir()
			s := openStore(t, root, WithIdleTimeout(100*time.Millisecond))
			got, err := s.Pull(context.Background(), ref)
			ranges := st.seen()
			t.Logf("requests for the stalling blob, by Range header: %q", ranges)
			if c.stalls < 0 {
				if !errors.Is(err, ErrStalled) {
					t.Fatalf("pull from a registry that stays quiet: %v, want ErrStalled", err)
				}
				t.Logf("refused: %v", err)
				for _, want := range []string{victim, reg.host, "pull again"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
				if l := leftovers(t, root); len(l) != 0 {
					t.Errorf("left behind: %v", l)
				}
				if exists(s.blobPath(victim)) {
					t.Error("the stalled blob is visible")
				}
				return
			}
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if len(got.LayerDirs) != 2 || !exists(s.blobPath(victim)) {
				t.Fatalf("pulled %+v", got)
			}
			if len(ranges) != c.stalls+1 {
				t.Fatalf("%d requests for the blob, want %d", len(ranges), c.stalls+1)
			}
			if c.beforeHeaders {
				if ranges[1] != "" {
					t.Errorf("retry after a stall before any byte asked for range %q", ranges[1])
				}
				return
			}
			for _, r := range ranges[1:] {
				if !strings.HasPrefix(r, "bytes=") || strings.HasPrefix(r, "bytes=0-") {
					t.Errorf("resume asked for %q, want the rest of the blob", r)
				}
			}
		})
	}
}
