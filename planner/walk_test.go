package planner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a fake step function that logs starts and ends, and fails the named nodes.
type recorder struct {
	mu      sync.Mutex
	events  []string
	fail    map[string]bool
	delay   time.Duration
	running atomic.Int32
	maxRun  atomic.Int32
}

func (r *recorder) fn(ctx context.Context, name string) error {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		m := r.maxRun.Load()
		if n <= m || r.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	r.log("start " + name)
	defer r.log("end " + name)
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.fail[name] {
		return fmt.Errorf("boom in %s", name)
	}
	return nil
}

func (r *recorder) log(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) index(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Index(r.events, s)
}

// diamond: a ← b, a ← c, b,c ← d; e alone; f after d.
func diamond() []Node {
	return []Node{
		{Name: "a"},
		{Name: "b", DependsOn: []string{"a"}},
		{Name: "c", DependsOn: []string{"a"}},
		{Name: "d", DependsOn: []string{"b", "c"}},
		{Name: "e"},
		{Name: "f", DependsOn: []string{"d"}},
	}
}

func TestWalkOrder(t *testing.T) {
	for _, par := range []int{0, 1, 2, 4} {
		t.Run(fmt.Sprint("parallelism ", par), func(t *testing.T) {
			r := &recorder{}
			errs := Walk(context.Background(), diamond(), par, r.fn)
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			for _, n := range diamond() {
				if r.index("start "+n.Name) < 0 {
					t.Errorf("%s did not run", n.Name)
				}
				for _, d := range n.DependsOn {
					if r.index("end "+d) > r.index("start "+n.Name) {
						t.Errorf("%s started before its dependency %s ended", n.Name, d)
					}
				}
			}
			if par <= 1 {
				// Sequential: ready nodes start in the order given.
				want := []string{"a", "b", "c", "d", "e", "f"}
				var got []string
				for _, e := range r.events {
					if name, ok := cutPrefix(e, "start "); ok {
						got = append(got, name)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("order %v, want %v", got, want)
				}
			}
		})
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func TestWalkParallelismBound(t *testing.T) {
	var nodes []Node
	for i := range 20 {
		nodes = append(nodes, Node{Name: fmt.Sprint("n", i)})
	}
	for _, par := range []int{1, 3, 8} {
		r := &recorder{delay: 5 * time.Millisecond}
		if errs := Walk(context.Background(), nodes, par, r.fn); len(errs) != 0 {
			t.Fatal(errs)
		}
		if got := int(r.maxRun.Load()); got > par || got < 1 {
			t.Errorf("parallelism %d: %d ran at once", par, got)
		}
		if par == 8 && r.maxRun.Load() < 2 {
			t.Errorf("parallelism 8 never ran two nodes at once")
		}
	}
}

func TestWalkFailureStopsDependentsOnly(t *testing.T) {
	r := &recorder{fail: map[string]bool{"b": true}}
	errs := Walk(context.Background(), diamond(), 2, r.fn)
	if got := errs["b"]; got == nil || got.Error() != "boom in b" {
		t.Errorf("b: %v", got)
	}
	for _, n := range []string{"d", "f"} {
		var de *DependencyError
		if !errors.As(errs[n], &de) || de.Failed != "b" || errs[n].Error() != "not started: dependency b failed" {
			t.Errorf("%s: %v", n, errs[n])
		}
		if !errors.Is(errs[n], ErrNotStarted) {
			t.Errorf("%s: not ErrNotStarted", n)
		}
		if r.index("start "+n) >= 0 {
			t.Errorf("%s ran", n)
		}
	}
	for _, n := range []string{"a", "c", "e"} {
		if errs[n] != nil || r.index("end "+n) < 0 {
			t.Errorf("%s: %v, ran: %v", n, errs[n], r.index("end "+n) >= 0)
		}
	}
	if len(errs) != 3 {
		t.Errorf("errors %v", errs)
	}
}

func TestWalkCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	nodes := []Node{{Name: "slow"}, {Name: "after", DependsOn: []string{"slow"}}, {Name: "other"}, {Name: "later", DependsOn: []string{"other"}}}
	started := make(chan struct{})
	var once sync.Once
	fn := func(ctx context.Context, name string) error {
		switch name {
		case "slow":
			once.Do(func() { close(started) })
			<-ctx.Done()
			return ctx.Err()
		case "other":
			<-started
			cancel()
			return nil
		}
		t.Errorf("%s ran after cancellation", name)
		return nil
	}
	done := make(chan map[string]error)
	go func() { done <- Walk(ctx, nodes, 2, fn) }()
	var errs map[string]error
	select {
	case errs = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Walk did not return after cancellation")
	}
	if !errors.Is(errs["slow"], context.Canceled) {
		t.Errorf("slow: %v", errs["slow"])
	}
	if errs["after"] == nil || errs["after"].Error() != "not started: dependency slow failed" {
		t.Errorf("after: %v", errs["after"])
	}
	if !errors.Is(errs["later"], ErrNotStarted) || !errors.Is(errs["later"], context.Canceled) {
		t.Errorf("later: %v", errs["later"])
	}
	if errs["other"] != nil {
		t.Errorf("other: %v", errs["other"])
	}
}

func TestWalkBadGraphs(t *testing.T) {
	nodes := []Node{
		{Name: "a", DependsOn: []string{"ghost"}},
		{Name: "b", DependsOn: []string{"a"}},
		{Name: "x", DependsOn: []string{"y"}},
		{Name: "y", DependsOn: []string{"x"}},
		{Name: "ok"},
	}
	ran := map[string]bool{}
	var mu sync.Mutex
	errs := Walk(context.Background(), nodes, 4, func(_ context.Context, name string) error {
		mu.Lock()
		ran[name] = true
		mu.Unlock()
		return nil
	})
	want := map[string]string{
		"a": `not started: unknown dependency "ghost"`,
		"b": "not started: dependency a failed",
		"x": "not started: dependency cycle",
		"y": "not started: dependency cycle",
	}
	for n, w := range want {
		if errs[n] == nil || errs[n].Error() != w {
			t.Errorf("%s: %v, want %s", n, errs[n], w)
		}
	}
	if !ran["ok"] || len(ran) != 1 {
		t.Errorf("ran %v", ran)
	}
}

func TestPlanWalk(t *testing.T) {
	p, err := Compute(project(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	errs := p.Walk(context.Background(), 3, func(_ context.Context, s *Step) error {
		mu.Lock()
		order = append(order, s.Sandbox)
		mu.Unlock()
		if s.Sandbox == "db" {
			return errors.New("db would not start")
		}
		return nil
	})
	if errs["api"] == nil || errs["api"].Error() != "not started: dependency db failed" ||
		errs["web"] == nil || errs["web"].Error() != "not started: dependency db failed" {
		t.Errorf("errors %v", errs)
	}
	slices.Sort(order)
	if !slices.Equal(order, []string{"cache", "db", "worker"}) {
		t.Errorf("ran %v", order)
	}
}
