package lang

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

type edgeKey struct{ from, to, origin string }

// buildEdges collects the dependency edges from depends_on and from references to sandbox.*,
// direct or through local values, then reports self-references and cycles.
func (l *loader) buildEdges() {
	edges := make(map[edgeKey]hcl.Range)
	add := func(k edgeKey, r hcl.Range) {
		if prev, ok := edges[k]; !ok || r.Start.Byte < prev.Start.Byte {
			edges[k] = r
		}
	}
	for _, name := range l.sbxNames {
		sb := l.sbx[name]
		if sb.raw == nil {
			continue
		}
		if a := sb.raw.Attributes["depends_on"]; a != nil {
			l.dependsOn(sb, a, add)
		}
		for _, t := range sb.refs {
			if len(t) < 2 {
				continue
			}
			to := attrName(t[1])
			switch t.RootName() {
			case "sandbox":
				if _, ok := l.sbx[to]; !ok {
					continue
				}
				if to == name {
					l.errorf(t.SourceRange().Ptr(), "Self-referencing sandbox", "Sandbox %q refers to itself; a sandbox cannot depend on its own values.", name)
					continue
				}
				add(edgeKey{name, to, OriginReference}, t.SourceRange())
			case "local":
				lc, ok := l.locals[to]
				if !ok {
					continue
				}
				for _, s := range sortedKeys(lc.sbx) {
					if _, ok := l.sbx[s]; !ok {
						continue
					}
					if s == name {
						l.errorf(t.SourceRange().Ptr(), "Self-referencing sandbox", "Sandbox %q refers to itself through local.%s, which uses sandbox.%s.", name, to, name)
						continue
					}
					add(edgeKey{name, s, OriginReference}, t.SourceRange())
				}
			}
		}
	}
	l.cfg.Edges = make([]Edge, 0, len(edges))
	for k, r := range edges {
		l.cfg.Edges = append(l.cfg.Edges, Edge{From: k.from, To: k.to, Origin: k.origin, Range: r})
	}
	sort.Slice(l.cfg.Edges, func(i, j int) bool {
		a, b := l.cfg.Edges[i], l.cfg.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Origin < b.Origin
	})
	l.findCycles()
}

func (l *loader) dependsOn(sb *sbDecl, a *hcl.Attribute, add func(edgeKey, hcl.Range)) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		l.errorf(a.Expr.Range().Ptr(), "Invalid depends_on", "depends_on must be a list of sandbox references, like [sandbox.db, sandbox.cache].")
		return
	}
	name := sb.out.Name
	seen := map[string]bool{}
	for _, e := range exprs {
		t, diags := hcl.AbsTraversalForExpr(e)
		if diags.HasErrors() || t.RootName() != "sandbox" || len(t) != 2 || attrName(t[1]) == "" {
			l.errorf(e.Range().Ptr(), "Invalid depends_on reference", "Each element of depends_on must be a sandbox reference like sandbox.db, not an expression.")
			continue
		}
		to := attrName(t[1])
		switch {
		case l.sbx[to] == nil:
			l.errorf(e.Range().Ptr(), "Reference to undeclared sandbox", "No sandbox named %q is defined.%s", to, suggest(to, l.sbxNames))
		case to == name:
			l.errorf(e.Range().Ptr(), "Self-referencing sandbox", "Sandbox %q cannot depend on itself.", name)
		default:
			add(edgeKey{name, to, OriginDependsOn}, e.Range())
			if !seen[to] {
				seen[to] = true
				sb.out.DependsOn = append(sb.out.DependsOn, to)
			}
		}
	}
	sort.Strings(sb.out.DependsOn)
}

// walkTraversals calls fn for every expression in body and its references, in source order,
// except depends_on (whose references are ordering, not values).
func walkTraversals(body *hclsyntax.Body, fn func(hclsyntax.Expression, []hcl.Traversal)) {
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		if a.Name != "depends_on" {
			attrs = append(attrs, a)
		}
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	for _, a := range attrs {
		fn(a.Expr, a.Expr.Variables())
	}
	for _, b := range body.Blocks {
		walkTraversals(b.Body, fn)
	}
}

// findCycles reports every dependency cycle once, naming its path.
func (l *loader) findCycles() {
	out := make(map[string][]Edge, len(l.sbxNames))
	for _, e := range l.cfg.Edges {
		out[e.From] = append(out[e.From], e)
	}
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(l.sbxNames))
	var nodes []string // path from the root to the current node
	var taken []Edge   // taken[k] goes from nodes[k] to nodes[k+1]
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		nodes = append(nodes, n)
		for _, e := range out[n] {
			switch color[e.To] {
			case white:
				taken = append(taken, e)
				visit(e.To)
				taken = taken[:len(taken)-1]
			case grey:
				i := len(nodes) - 1
				for nodes[i] != e.To {
					i--
				}
				path := make([]string, 0, len(nodes)-i+1)
				for _, m := range nodes[i:] {
					path = append(path, "sandbox."+m)
				}
				path = append(path, "sandbox."+e.To)
				r := e.Range
				if i < len(taken) {
					r = taken[i].Range
				}
				l.errorf(&r, "Dependency cycle", "The sandboxes depend on each other in a cycle: %s. Remove one of these references or depends_on entries.", strings.Join(path, " → "))
			}
		}
		nodes = nodes[:len(nodes)-1]
		color[n] = black
	}
	for _, n := range l.sbxNames {
		if color[n] == white {
			visit(n)
		}
	}
}
