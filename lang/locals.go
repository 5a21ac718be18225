package lang

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

type local struct {
	name    string
	attr    *hcl.Attribute
	deps    []string        // local values referenced directly
	sbx     map[string]bool // sandboxes referenced, directly or through other locals
	usesNet bool            // network.* referenced, directly or through other locals
	stage   int
	cycle   bool
	value   cty.Value
}

// analyzeLocals finds the dependencies between local values, reports cycles, and decides the
// stage at which each can be evaluated.
func (l *loader) analyzeLocals() {
	for _, lc := range l.localList {
		lc.sbx = map[string]bool{}
		seen := map[string]bool{}
		for _, t := range lc.attr.Expr.Variables() {
			name := ""
			if len(t) > 1 {
				name = attrName(t[1])
			}
			switch t.RootName() {
			case "local":
				if _, ok := l.locals[name]; ok && !seen[name] {
					seen[name] = true
					lc.deps = append(lc.deps, name)
				}
			case "sandbox":
				if name != "" {
					lc.sbx[name] = true
				}
			case "network":
				lc.usesNet = true
			}
		}
	}
	l.sortLocals()
	// l.topo has dependencies first, so one pass computes the transitive closure.
	for _, lc := range l.topo {
		for _, d := range lc.deps {
			dep := l.locals[d]
			if dep.cycle {
				continue
			}
			for s := range dep.sbx {
				lc.sbx[s] = true
			}
			lc.usesNet = lc.usesNet || dep.usesNet
		}
		switch {
		case len(lc.sbx) > 0:
			lc.stage = stageAll
		case lc.usesNet:
			lc.stage = stageNetworks
		}
	}
}

// sortLocals orders the locals dependencies-first into l.topo with a depth-first search, and
// reports each cycle once.
func (l *loader) sortLocals() {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(l.localList))
	var stack []string
	var visit func(lc *local)
	visit = func(lc *local) {
		color[lc.name] = grey
		stack = append(stack, lc.name)
		for _, d := range lc.deps {
			dep := l.locals[d]
			switch color[d] {
			case white:
				visit(dep)
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				path := append(append([]string(nil), stack[i:]...), d)
				for j := range path {
					path[j] = "local." + path[j]
				}
				for _, n := range stack[i:] {
					l.locals[n].cycle = true
				}
				first := l.locals[d]
				l.errorf(first.attr.NameRange.Ptr(), "Cycle in local values", "The local values refer to each other in a cycle: %s. Break the cycle by removing one of these references.", strings.Join(path, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		color[lc.name] = black
		l.topo = append(l.topo, lc)
	}
	for _, lc := range l.localList {
		if color[lc.name] == white {
			visit(lc)
		}
	}
}

// evalLocals evaluates the locals of one stage, dependencies first. Each local sees only the
// locals it references, so the cost is linear in the size of the references.
func (l *loader) evalLocals(stage int) {
	for _, lc := range l.topo {
		if lc.stage != stage || lc.cycle {
			continue
		}
		deps := make(map[string]cty.Value, len(lc.deps))
		for _, d := range lc.deps {
			deps[d] = l.locals[d].value
		}
		ctx := l.ctx.NewChild()
		ctx.Variables = map[string]cty.Value{"local": cty.ObjectVal(deps)}
		if v, ok := l.eval(lc.attr.Expr, ctx, stageAll, "a local value"); ok {
			lc.value = v
		}
	}
}

func (l *loader) localObject() cty.Value {
	m := make(map[string]cty.Value, len(l.localList))
	for _, lc := range l.localList {
		m[lc.name] = lc.value
	}
	return cty.ObjectVal(m)
}

// eval checks the references of expr, then evaluates it. It returns false when the value is
// unusable: an error was reported, or the value is unknown because of an earlier error.
// The value keeps its marks.
func (l *loader) eval(expr hcl.Expression, ctx *hcl.EvalContext, stage int, what string) (cty.Value, bool) {
	if !l.checkRefs(l.variables(expr), stage, what) {
		return cty.DynamicVal, false
	}
	v, diags := expr.Value(ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.DynamicVal, false
	}
	return v, true
}

// variables returns the references of expr, computed once for the expressions of sandbox
// bodies (which are walked for dependency edges anyway).
func (l *loader) variables(expr hcl.Expression) []hcl.Traversal {
	if se, ok := expr.(hclsyntax.Expression); ok {
		if travs, ok := l.travs[se]; ok {
			return travs
		}
	}
	return expr.Variables()
}

// checkRefs reports references to undeclared objects, and references to objects that are not
// available yet at stage (sandbox.* inside port and network blocks, for example).
func (l *loader) checkRefs(travs []hcl.Traversal, stage int, what string) bool {
	ok := true
	for _, t := range travs {
		root := t.RootName()
		switch root {
		case "var", "local", "network", "volume", "sandbox", "path":
		default:
			continue // functions' and dynamic blocks' own names; HCL reports unknown ones
		}
		rng := t.SourceRange()
		if len(t) < 2 || attrName(t[1]) == "" {
			l.errorf(&rng, "Invalid reference", "A reference to %q must name one of its attributes, like %s.NAME.", root, root)
			ok = false
			continue
		}
		name := attrName(t[1])
		switch root {
		case "var":
			if _, found := l.vars[name]; !found {
				l.errorf(&rng, "Reference to undeclared input variable", "No variable named %q is declared.%s Declare it with a variable block.", name, suggest(name, sortedKeys(l.vars)))
				ok = false
			}
		case "local":
			lc, found := l.locals[name]
			if !found {
				l.errorf(&rng, "Reference to undeclared local value", "No local value named %q is defined.%s Define it in a locals block.", name, suggest(name, sortedKeys(l.locals)))
				ok = false
			} else if lc.stage > stage {
				l.errorf(&rng, "Invalid reference", "local.%s depends on %s, which cannot be used in %s.", name, stageNeed(lc), what)
				ok = false
			}
		case "network":
			if _, found := l.networks[name]; !found {
				l.errorf(&rng, "Reference to undeclared network", "No network named %q is defined.%s Define it with a network block.", name, suggest(name, l.netNames))
				ok = false
			} else if stage < stageNetworks {
				l.errorf(&rng, "Invalid reference", "Networks cannot be referenced in %s.", what)
				ok = false
			}
		case "volume":
			if _, found := l.volumes[name]; !found {
				l.errorf(&rng, "Reference to undeclared volume", "No volume named %q is defined.%s Define it with a volume %q {} block.", name, suggest(name, l.volNames), name)
				ok = false
			}
		case "sandbox":
			sb, found := l.sbx[name]
			switch {
			case !found:
				l.errorf(&rng, "Reference to undeclared sandbox", "No sandbox named %q is defined.%s", name, suggest(name, l.sbxNames))
				ok = false
			case stage < stageAll:
				l.errorf(&rng, "Invalid reference", "sandbox.%s cannot be used in %s: ports and network settings are resolved before the sandbox objects exist. Use a variable or a local value that does not depend on a sandbox.", name, what)
				ok = false
			case len(t) > 2 && attrName(t[2]) == "ip" && !sb.out.Network.IP.IsValid():
				why := fmt.Sprintf("it is in no network group. Add network { group = network.NAME } to sandbox %q", name)
				if sb.out.Network.Group != "" {
					why = "its address could not be determined; see the other errors"
				}
				l.errorf(&rng, "Sandbox has no IP address", "sandbox.%s has no address because %s.", name, why)
				ok = false
			}
		case "path":
			if name != "root" && name != "cwd" {
				l.errorf(&rng, "Invalid path reference", "path.%s does not exist; use path.root (the Sandboxfile's directory) or path.cwd (the working directory).", name)
				ok = false
			}
		}
	}
	return ok
}

func stageNeed(lc *local) string {
	if len(lc.sbx) > 0 {
		return "sandbox." + sortedKeys(lc.sbx)[0]
	}
	return "a network"
}
