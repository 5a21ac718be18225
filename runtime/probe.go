package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/sbx-dev/sbx/runtime/spec"
)

// Probe is one readiness check. Check returns nil once the sandbox is ready; it is called
// repeatedly by WaitReady until it succeeds or the probe's timeout passes.
type Probe interface {
	Check(ctx context.Context) error
	String() string
}

// TCPProbe is ready when a TCP connection to Addr succeeds. Dial, when set, replaces the
// dial of Addr: a driver that can reach the guest port itself provides it, so the probe sees
// the guest listening rather than a proxy on the host that accepts for it.
type TCPProbe struct {
	Addr string
	Dial func(ctx context.Context) (net.Conn, error)
}

// Check dials once.
func (p TCPProbe) Check(ctx context.Context) error {
	if p.Dial != nil {
		c, err := p.Dial(ctx)
		if err != nil {
			return err
		}
		return c.Close()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func (p TCPProbe) String() string { return "tcp " + p.Addr }

// HTTPProbe is ready when a GET of the sandbox's own port answers with a 2xx status. Dial
// connects to that port (through the driver, which reaches the guest itself).
type HTTPProbe struct {
	Spec spec.HTTPProbe
	Dial func(ctx context.Context) (net.Conn, error)
}

// Check performs one GET.
func (p HTTPProbe) Check(ctx context.Context) error {
	host := p.Spec.Host
	if host == "" {
		host = "localhost"
	}
	client := &http.Client{Transport: &http.Transport{
		// Probes talk to the sandbox directly: a proxy configured for the user's browsing
		// must not see (or break) them.
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return p.Dial(ctx) },
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+p.Spec.Path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s answered %s", p.Spec.Path, resp.Status)
	}
	return nil
}

func (p HTTPProbe) String() string {
	return fmt.Sprintf("http guest port %d%s", p.Spec.Port, p.Spec.Path)
}

// LogProbe is ready when a line of the console log at Path, written after Offset, matches
// Pattern. Offset lets a restarted sandbox be judged only by what it printed this time.
type LogProbe struct {
	Path    string
	Pattern *regexp.Regexp
	Offset  int64
}

// Check scans the log from Offset.
func (p LogProbe) Check(ctx context.Context) error {
	f, err := os.Open(p.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < p.Offset {
		// The log was rotated since Offset was taken: everything in it is new.
		p.Offset = 0
	}
	if _, err := f.Seek(p.Offset, 0); err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// sbx's own notes in the console ("[sbx] unready: no line matches …") are not the
		// payload's output: a pattern must never match its own failure message.
		if _, text := SplitStamp(sc.Bytes()); !bytes.HasPrefix(text, []byte("[sbx] ")) && p.Pattern.Match(text) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no line matches %q yet", p.Pattern.String())
}

func (p LogProbe) String() string { return "log /" + p.Pattern.String() + "/" }

// ErrNotReady is wrapped by WaitReady when the timeout passes.
var ErrNotReady = errors.New("not ready")

// WaitReady runs probe every interval until it succeeds, the timeout passes or ctx ends. alive
// (may be nil) is consulted between attempts so a sandbox that died fails fast rather than
// waiting out its timeout.
func WaitReady(ctx context.Context, probe Probe, timeout, interval time.Duration, alive func() error) error {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		perAttempt := max(interval, time.Second)
		attempt, cancelAttempt := context.WithTimeout(ctx, perAttempt)
		err := probe.Check(attempt)
		switch {
		case err != nil && ctx.Err() != nil && last != nil:
			// The overall timeout cut this attempt short: the previous attempt's error says
			// more than "context deadline exceeded".
		case err != nil && attempt.Err() != nil && ctx.Err() == nil:
			last = fmt.Errorf("no answer within %s", perAttempt)
		default:
			last = err
		}
		cancelAttempt()
		if err == nil {
			return nil
		}
		if alive != nil {
			if err := alive(); err != nil {
				return fmt.Errorf("%s: %w", probe, err)
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: %w after %s (last attempt: %v)", probe, ErrNotReady, timeout, last)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}
