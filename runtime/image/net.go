package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrStalled is wrapped by the error of a registry request that received
// nothing for the idle timeout (WithIdleTimeout), and by the error of a
// blob download given up after its resumes received nothing either.
var ErrStalled = errors.New("the registry stopped sending data")

// DefaultIdleTimeout is how long a registry may send nothing, while a
// response or more of a body is awaited, before the request is abandoned.
const DefaultIdleTimeout = 30 * time.Second

// maxResumes is how many times in a row a blob download is resumed
// without receiving a byte before the pull fails.
const maxResumes = 3

var errIdle = errors.New("idle timeout")

// idleTransport abandons a request when nothing arrives for idle: while
// the response headers are awaited, and during each read of the body (not
// between reads, when the reader is busy elsewhere).
type idleTransport struct {
	base http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.idle, func() { cancel(errIdle) })
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		if errors.Is(context.Cause(ctx), errIdle) {
			err = t.stalled(req)
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &idleBody{rc: resp.Body, t: t, req: req, ctx: ctx, cancel: cancel, timer: timer}
	return resp, nil
}

func (t *idleTransport) stalled(req *http.Request) error {
	return fmt.Errorf("%w: nothing received from %s for %s", ErrStalled, req.URL.Host, t.idle)
}

type idleBody struct {
	rc     io.ReadCloser
	t      *idleTransport
	req    *http.Request
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.t.idle)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), errIdle) {
		err = b.t.stalled(b.req)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// registryBlobs returns a function that opens a blob of ref's repository
// from byte off on (an HTTP Range request; a registry that ignores the
// range has the bytes before off skipped). The registry is authenticated
// against once, at the first call.
func (s *Store) registryBlobs(ref name.Reference) func(ctx context.Context, h v1.Hash, off, size int64) (io.ReadCloser, error) {
	repo := ref.Context()
	var (
		mu     sync.Mutex
		client *http.Client
	)
	connect := func(ctx context.Context) (*http.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if client != nil {
			return client, nil
		}
		auth, err := authn.Resolve(ctx, s.o.keychain, repo)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
		}
		tr, err := transport.NewWithContext(ctx, repo.Registry, auth, s.o.transport, []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", repo.RegistryStr(), err)
		}
		client = &http.Client{Transport: tr}
		return client, nil
	}
	return func(ctx context.Context, h v1.Hash, off, size int64) (io.ReadCloser, error) {
		c, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + h.String()}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("fetch blob %s: %w", h, err)
		}
		if off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, size-1))
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch blob %s from %s: %w", h, repo.RegistryStr(), err)
		}
		if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch blob %s from %s: %w", h, repo.RegistryStr(), err)
		}
		if off > 0 && resp.StatusCode == http.StatusOK {
			// The whole blob again: skip what was received.
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("fetch blob %s from %s: skip to byte %d: %w", h, repo.RegistryStr(), off, err)
			}
		}
		return resp.Body, nil
	}
}

// resumable says whether a failed read of a registry blob is worth a
// resume: the registry went quiet or the connection broke.
func resumable(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrStalled) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

// resumingReader reads a registry blob, resuming it from where it broke
// off when the registry stalls or the connection breaks, up to
// maxResumes times in a row without progress.
type resumingReader struct {
	ctx    context.Context
	open   func(ctx context.Context, off int64) (io.ReadCloser, error)
	blob   string
	origin string
	size   int64
	idle   time.Duration
	log    func(msg string, args ...any)

	mu     sync.Mutex
	rc     io.ReadCloser
	closed bool
	off    int64
	tries  int // failed attempts since the last byte received
}

// start opens the blob from r.off on, retrying while the registry stalls
// or the connection breaks.
func (r *resumingReader) start() error {
	for {
		rc, err := r.open(r.ctx, r.off)
		if err == nil {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.closed {
				rc.Close()
				return errClosedBlob
			}
			r.rc = rc
			return nil
		}
		if err := r.failed(err); err != nil {
			return err
		}
	}
}

var errClosedBlob = errors.New("read of a closed blob")

// failed counts a failed attempt and says whether to give up (with the
// error to return) or to try again (nil).
func (r *resumingReader) failed(err error) error {
	if r.ctx.Err() != nil || !resumable(err) {
		return err
	}
	r.tries++
	if r.tries > maxResumes {
		return fmt.Errorf("blob %s from %s: %w (%d attempts in a row received nothing; %d of %d bytes arrived): check the network and the registry, then pull again (sbx waits %s for data)",
			r.blob, r.origin, err, r.tries, r.off, r.size, r.idle)
	}
	r.log("resuming a blob download", "blob", r.blob, "registry", r.origin, "at", r.off, "of", r.size, "err", err)
	return nil
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		r.mu.Lock()
		rc, closed := r.rc, r.closed
		r.mu.Unlock()
		if closed {
			return 0, errClosedBlob
		}
		if rc == nil {
			if err := r.start(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := rc.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.tries = 0
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		if ferr := r.failed(err); ferr != nil {
			return n, ferr
		}
		r.mu.Lock()
		if r.rc == rc {
			r.rc.Close()
			r.rc = nil
		}
		r.mu.Unlock()
		if n > 0 {
			return n, nil
		}
	}
}

func (r *resumingReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.rc != nil {
		err := r.rc.Close()
		r.rc = nil
		return err
	}
	return nil
}
