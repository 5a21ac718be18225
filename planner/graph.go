package planner

import (
	"container/heap"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sbx-dev/sbx/lang"
)

// Graph is the dependency graph of a Sandboxfile's sandboxes: an edge from A to B says that A
// depends on B (depends_on or a reference to sandbox.B), so B starts first and stops last.
type Graph struct {
	names []string            // sorted
	deps  map[string][]string // sorted, without duplicates
	rdeps map[string][]string // dependents, sorted
	order []string            // dependencies first, ties by name
}

// CycleError is a dependency cycle. Cycle starts and ends with the same sandbox.
type CycleError struct {
	Cycle []string
}

// Error names the cycle.
func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Cycle, " → ") + "; remove one of these depends_on entries or references"
}

// UnknownSandboxError is a name that is neither in the Sandboxfile nor in the state.
type UnknownSandboxError struct {
	Name       string
	Suggestion string // closest known name, or ""
}

// Error names the sandbox and the suggestion.
func (e *UnknownSandboxError) Error() string {
	if e.Suggestion != "" {
		return fmt.Sprintf("unknown sandbox %q (did you mean %q?)", e.Name, e.Suggestion)
	}
	return fmt.Sprintf("unknown sandbox %q: sbx plan lists the sandboxes of the Sandboxfile", e.Name)
}

// NewGraph builds the dependency graph of cfg from cfg.Edges. An edge naming a sandbox that does
// not exist, or a cycle, is an error.
func NewGraph(cfg *lang.Config) (*Graph, error) {
	names := make([]string, 0, len(cfg.Sandboxes))
	for _, s := range cfg.Sandboxes {
		names = append(names, s.Name)
	}
	deps := map[string][]string{}
	for _, e := range cfg.Edges {
		deps[e.From] = append(deps[e.From], e.To)
	}
	return newGraph(names, deps)
}

// newGraph builds a graph over names; deps may hold duplicates and need not be sorted.
func newGraph(names []string, deps map[string][]string) (*Graph, error) {
	g := &Graph{
		names: slices.Clone(names),
		deps:  make(map[string][]string, len(names)),
		rdeps: make(map[string][]string, len(names)),
	}
	slices.Sort(g.names)
	g.names = slices.Compact(g.names)
	known := make(map[string]bool, len(g.names))
	for _, n := range g.names {
		known[n] = true
	}
	for from, tos := range deps {
		if !known[from] {
			return nil, fmt.Errorf("dependency of unknown sandbox %q", from)
		}
		tos = slices.Clone(tos)
		slices.Sort(tos)
		tos = slices.Compact(tos)
		for _, to := range tos {
			if !known[to] {
				return nil, fmt.Errorf("sandbox %q depends on unknown sandbox %q", from, to)
			}
			g.rdeps[to] = append(g.rdeps[to], from)
		}
		g.deps[from] = tos
	}
	for _, r := range g.rdeps {
		slices.Sort(r)
	}
	order, err := g.topo()
	if err != nil {
		return nil, err
	}
	g.order = order
	return g, nil
}

// Names returns every sandbox of the graph, sorted.
func (g *Graph) Names() []string { return slices.Clone(g.names) }

// Has reports whether the graph holds the sandbox name.
func (g *Graph) Has(name string) bool {
	_, ok := slices.BinarySearch(g.names, name)
	return ok
}

// Dependencies returns the sandboxes name depends on directly, sorted.
func (g *Graph) Dependencies(name string) []string { return slices.Clone(g.deps[name]) }

// Dependents returns the sandboxes that depend on name directly, sorted.
func (g *Graph) Dependents(name string) []string { return slices.Clone(g.rdeps[name]) }

// Order returns every sandbox, dependencies before their dependents; among sandboxes whose
// dependencies are all placed, the smallest name comes first, so the order is deterministic.
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Closure returns targets and, unless noDeps, everything they depend on transitively, in
// Order. An unknown target is an *UnknownSandboxError.
func (g *Graph) Closure(targets []string, noDeps bool) ([]string, error) {
	sel := make(map[string]bool, len(targets))
	var stack []string
	for _, t := range targets {
		if !g.Has(t) {
			return nil, &UnknownSandboxError{Name: t, Suggestion: suggest(t, g.names)}
		}
		if !sel[t] {
			sel[t] = true
			stack = append(stack, t)
		}
	}
	for !noDeps && len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g.deps[n] {
			if !sel[d] {
				sel[d] = true
				stack = append(stack, d)
			}
		}
	}
	out := make([]string, 0, len(sel))
	for _, n := range g.order {
		if sel[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// WriteDOT writes the graph in Graphviz DOT, an edge from each sandbox to its dependencies.
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph sbx {\n\trankdir = \"RL\";\n")
	for _, n := range g.names {
		fmt.Fprintf(&b, "\t%q;\n", n)
	}
	for _, n := range g.names {
		for _, d := range g.deps[n] {
			fmt.Fprintf(&b, "\t%q -> %q;\n", n, d)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// topo orders the graph (Kahn's algorithm, ties by name) or returns the cycle that prevents it.
func (g *Graph) topo() ([]string, error) {
	pending := make(map[string]int, len(g.names))
	h := make(minHeap[string], 0, len(g.names))
	for _, n := range g.names {
		pending[n] = len(g.deps[n])
		if pending[n] == 0 {
			h = append(h, n)
		}
	}
	heap.Init(&h)
	order := make([]string, 0, len(g.names))
	for h.Len() > 0 {
		n := heap.Pop(&h).(string)
		order = append(order, n)
		for _, d := range g.rdeps[n] {
			pending[d]--
			if pending[d] == 0 {
				heap.Push(&h, d)
			}
		}
	}
	if len(order) == len(g.names) {
		return order, nil
	}
	return nil, &CycleError{Cycle: g.findCycle(pending)}
}

// findCycle returns a cycle among the sandboxes left with pending dependencies, starting at the
// smallest name found on one, so the error is the same on every run.
func (g *Graph) findCycle(pending map[string]int) []string {
	// Every node with pending > 0 has a dependency with pending > 0: follow the smallest one
	// until a node repeats.
	start := ""
	for _, n := range g.names {
		if pending[n] > 0 {
			start = n
			break
		}
	}
	seen := map[string]int{}
	var path []string
	n := start
	for {
		if i, ok := seen[n]; ok {
			cyc := slices.Clone(path[i:])
			// Rotate so the smallest name leads.
			m := 0
			for j := range cyc {
				if cyc[j] < cyc[m] {
					m = j
				}
			}
			cyc = append(cyc[m:], cyc[:m]...)
			return append(cyc, cyc[0])
		}
		seen[n] = len(path)
		path = append(path, n)
		for _, d := range g.deps[n] {
			if pending[d] > 0 {
				n = d
				break
			}
		}
	}
}

// suggest returns the name in names closest to s, if it is close enough to be a likely typo.
func suggest(s string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := levenshtein(s, n)
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
