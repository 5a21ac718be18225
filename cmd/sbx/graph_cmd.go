package main

import (
	"fmt"
	"strings"

	"github.com/sbx-dev/sbx/lang"
)

type graphCmd struct {
	Networks bool `help:"Also draw network groups and their members." default:"true" negatable:""`
}

func (c *graphCmd) Run(a *app) error {
	cfg, err := a.load()
	if err != nil {
		return err
	}
	fmt.Fprint(a.stdout, dot(cfg, c.Networks))
	return nil
}

// dot renders the dependency graph: one node per sandbox, an edge from each sandbox to what
// it depends on, labelled with where the edge comes from (depends_on or a reference), and,
// when networks is set, a dashed edge from each network to its members.
func dot(cfg *lang.Config, networks bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(cfg.Project.Name))
	b.WriteString("  rankdir = \"BT\";\n  node [shape = box, style = rounded];\n")
	for _, s := range cfg.Sandboxes {
		label := s.Name + "\\n" + s.Image
		fmt.Fprintf(&b, "  %s [label = %s];\n", dotQuote("sandbox."+s.Name), dotQuote(label))
	}
	if networks {
		for _, n := range cfg.Networks {
			fmt.Fprintf(&b, "  %s [shape = ellipse, style = dashed, label = %s];\n",
				dotQuote("network."+n.Name), dotQuote(n.Name+"\\n"+n.Subnet.String()))
		}
	}
	// lang keeps Edges sorted, so one node pair appears on consecutive lines with each origin.
	seen := map[[2]string][]string{}
	var order [][2]string
	for _, e := range cfg.Edges {
		k := [2]string{e.From, e.To}
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] = append(seen[k], e.Origin)
	}
	for _, k := range order {
		fmt.Fprintf(&b, "  %s -> %s [label = %s];\n", dotQuote("sandbox."+k[0]),
			dotQuote("sandbox."+k[1]), dotQuote(strings.Join(dedupe(seen[k]), ", ")))
	}
	if networks {
		for _, s := range cfg.Sandboxes {
			if s.Network.Group == "" {
				continue
			}
			label := s.Network.Scope
			if s.Network.IP.IsValid() {
				label += " " + s.Network.IP.String()
			}
			fmt.Fprintf(&b, "  %s -> %s [style = dashed, arrowhead = none, label = %s];\n",
				dotQuote("sandbox."+s.Name), dotQuote("network."+s.Network.Group), dotQuote(label))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// dotQuote quotes s as a DOT string, leaving \n escapes (line breaks in labels) alone.
func dotQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func dedupe(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}
