package image

import (
	"context"
	"sync"
)

// flightGroup runs one function per key at a time within a process: the
// first caller runs it in its own goroutine, later callers wait for its
// result or for their own context. Unlike x/sync/singleflight, a waiter
// can give up when its context ends, and nothing runs in the background
// after the caller returns.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	val  any
	err  error
}

// do runs fn for key unless a call for key is in flight, in which case it
// waits for that call's result; shared reports the latter.
func (g *flightGroup) do(ctx context.Context, key string, fn func() (any, error)) (val any, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flightCall{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, true, c.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, false, c.err
}
