package planner

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
)

// Node is a vertex of a walk: a name and the names of the nodes it waits for.
type Node struct {
	Name      string
	DependsOn []string
}

// ErrNotStarted is wrapped by the error of every node that Walk did not start: a dependency
// failed (a *DependencyError), the context was cancelled, or the node is part of a cycle.
var ErrNotStarted = errors.New("not started")

// DependencyError is the error of a node skipped because a node it depends on, directly or
// through others, failed. Failed names that root failure, so a chain of skipped nodes reports
// the root cause once, at its own node, and each dependent says which failure stopped it.
type DependencyError struct {
	Node   string
	Failed string
}

// Error is "not started: dependency X failed", X being the root failure.
func (e *DependencyError) Error() string {
	return fmt.Sprintf("not started: dependency %s failed", e.Failed)
}

// Unwrap makes errors.Is(err, ErrNotStarted) true.
func (e *DependencyError) Unwrap() error { return ErrNotStarted }

// Walk runs fn once per node, a node only after every node it depends on returned nil, with at
// most parallelism calls at a time (less than 1 means 1). Among nodes that are ready together,
// the one listed first in nodes starts first.
//
// A node whose fn fails stops its dependents, transitively: they are not started and get a
// *DependencyError naming the failed node; independent nodes go on. Once ctx is done no node
// starts (their error wraps ErrNotStarted and ctx.Err()); running calls get ctx and are waited
// for. Walk returns the error of each node that failed or did not start; a node that succeeded
// has no entry. A dependency on a name that is not a node, and nodes in a cycle, are not started.
func Walk(ctx context.Context, nodes []Node, parallelism int, fn func(ctx context.Context, name string) error) map[string]error {
	parallelism = max(parallelism, 1)
	errs := map[string]error{}
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if _, dup := index[n.Name]; dup {
			errs[n.Name] = fmt.Errorf("%w: node %q is listed twice", ErrNotStarted, n.Name)
			continue
		}
		index[n.Name] = i
	}

	pending := make([]int, len(nodes))
	dependents := make([][]int, len(nodes))
	done := make([]bool, len(nodes)) // finished, failed or skipped
	for i, n := range nodes {
		if _, dup := errs[n.Name]; dup {
			done[i] = true
			continue
		}
		seen := map[string]bool{}
		for _, d := range n.DependsOn {
			if seen[d] {
				continue
			}
			seen[d] = true
			j, ok := index[d]
			if !ok {
				errs[n.Name] = fmt.Errorf("%w: unknown dependency %q", ErrNotStarted, d)
				done[i] = true
				break
			}
			pending[i]++
			dependents[j] = append(dependents[j], i)
		}
	}

	// skip marks the dependents of node i as not started because root failed.
	var skip func(i int, root string)
	skip = func(i int, root string) {
		for _, d := range dependents[i] {
			if done[d] {
				continue
			}
			done[d] = true
			errs[nodes[d].Name] = &DependencyError{Node: nodes[d].Name, Failed: root}
			skip(d, root)
		}
	}
	for i, n := range nodes {
		if done[i] {
			if _, ok := errs[n.Name].(*DependencyError); !ok {
				skip(i, n.Name)
			}
		}
	}

	ready := &minHeap[int]{}
	for i := range nodes {
		if !done[i] && pending[i] == 0 {
			heap.Push(ready, i)
		}
	}

	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(nodes))
	running := 0
	for {
		for running < parallelism && ready.Len() > 0 && ctx.Err() == nil {
			i := heap.Pop(ready).(int)
			running++
			go func() {
				results <- result{i, fn(ctx, nodes[i].Name)}
			}()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		done[r.i] = true
		if r.err != nil {
			errs[nodes[r.i].Name] = r.err
			skip(r.i, nodes[r.i].Name)
			continue
		}
		for _, d := range dependents[r.i] {
			if done[d] {
				continue
			}
			pending[d]--
			if pending[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}

	for i, n := range nodes {
		if done[i] {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs[n.Name] = fmt.Errorf("%w: %w", ErrNotStarted, err)
		} else {
			errs[n.Name] = fmt.Errorf("%w: dependency cycle", ErrNotStarted)
		}
	}
	return errs
}

// Walk walks the steps of the plan (see the package-level Walk): each step after the steps it
// depends on, dependents of a failed step not started.
func (p *Plan) Walk(ctx context.Context, parallelism int, fn func(ctx context.Context, step *Step) error) map[string]error {
	byName := make(map[string]*Step, len(p.Steps))
	for i := range p.Steps {
		byName[p.Steps[i].Sandbox] = &p.Steps[i]
	}
	return Walk(ctx, p.Nodes(), parallelism, func(ctx context.Context, name string) error {
		return fn(ctx, byName[name])
	})
}

// minHeap is a min-heap for container/heap: node indexes in Walk, names in Graph.topo.
type minHeap[T cmp.Ordered] []T

func (h minHeap[T]) Len() int           { return len(h) }
func (h minHeap[T]) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap[T]) Push(x any)        { *h = append(*h, x.(T)) }
func (h *minHeap[T]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
