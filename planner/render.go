package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sbx-dev/sbx/lang"
)

// ANSI escapes; Render writes them only when asked to (a TTY, no --no-color).
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// symbol returns the marker of an action and its colour.
func symbol(a Action) (string, string) {
	switch a {
	case ActionCreate:
		return "+", ansiGreen
	case ActionDestroy:
		return "-", ansiRed
	case ActionReplace:
		return "-/+", ansiYellow
	case ActionStart:
		return ">", ansiCyan
	case ActionUpdate:
		return "~", ansiYellow
	}
	return "?", ""
}

// Render writes the plan as text, Terraform-like:
//
//   - destroy sandbox.old (not in the Sandboxfile)
//
//   - create sandbox.cache
//     image: "redis:7"
//     -/+ replace sandbox.db (spec changed)
//     image: "postgres:15" → "postgres:16"  # forces replacement
//     > start sandbox.web (crashed: supervisor pid 412 is gone)
//     ~ update sandbox.api (watch changed; applied in place, no restart)
//
//     Plan: 1 to create, 1 to replace, 1 to destroy, 1 to start.
//
// or "No changes.", then the failed static checks. color adds ANSI colours.
func (p *Plan) Render(w io.Writer, color bool) error {
	var b strings.Builder
	paint := func(code, s string) string {
		if !color || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	for _, s := range p.Steps {
		sym, code := symbol(s.Action)
		fmt.Fprintf(&b, "%s sandbox.%s", paint(code, sym+" "+string(s.Action)), s.Sandbox)
		if s.Reason != "" {
			fmt.Fprintf(&b, " (%s)", s.Reason)
		}
		b.WriteByte('\n')
		if s.Action == ActionCreate && s.Desired != nil {
			fmt.Fprintf(&b, "    image: %s\n", showValue(s.Desired.Image, isSensitive(FieldImage, s.Desired.Sensitive)))
			if s.ImageDigest != "" {
				fmt.Fprintf(&b, "    image_digest: %s\n", showValue(s.ImageDigest, false))
			}
		}
		for _, c := range s.Changes {
			fmt.Fprintf(&b, "    %s: %s → %s", c.Field, showValue(c.Old, c.Sensitive), showValue(c.New, c.Sensitive))
			if c.ForcesReplacement && s.Action == ActionReplace {
				b.WriteString("  " + paint(ansiRed, "# forces replacement"))
			}
			b.WriteByte('\n')
		}
		if s.Action == ActionCreate || s.Action == ActionReplace {
			for _, m := range outsideMounts(s.Desired) {
				fmt.Fprintf(&b, "    %s\n", paint(ansiYellow, "# reaches outside the project: "+m))
			}
		}
		for _, d := range s.Discards {
			what := "# deletes its " + d
			if d == DiscardWritableLayer {
				what += ": files written inside sandbox." + s.Sandbox + " since it was created are lost"
			}
			fmt.Fprintf(&b, "    %s\n", paint(ansiRed, what))
		}
	}
	if len(p.Steps) > 0 {
		b.WriteByte('\n')
	}
	if p.HasChanges() {
		sum := p.Summary()
		fmt.Fprintf(&b, "%s %d to create, %d to replace, %d to destroy, %d to start",
			paint(ansiBold, "Plan:"), sum.Create, sum.Replace, sum.Destroy, sum.Start)
		if sum.Update > 0 {
			fmt.Fprintf(&b, ", %d to update in place", sum.Update)
		}
		b.WriteString(".\n")
	} else {
		b.WriteString(paint(ansiGreen, "No changes.") + "\n")
	}
	if len(p.Targets) > 0 {
		deps := " and their dependencies"
		if p.NoDeps {
			deps = " (--no-deps)"
		}
		fmt.Fprintf(&b, "\nNote: planned only for the targets %s%s; other sandboxes were not compared.\n", strings.Join(p.Targets, ", "), deps)
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(&b, "\n%s %s\n", paint(ansiBold+ansiRed, "Error:"), pr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// showValue formats a value for text plans: compact JSON, "(none)" for an undeclared value.
func showValue(v any, sensitive bool) string {
	if sensitive {
		return sensitiveText
	}
	if v == nil {
		return "(none)"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// outsideMounts describes the mounts of sb whose host path lies outside the project
// directory: "/home/me/data → /data (read-only)". Sensitive ones are hidden.
func outsideMounts(sb *lang.Sandbox) []string {
	if sb == nil {
		return nil
	}
	var out []string
	for i, m := range sb.Mounts {
		if !m.OutsideProject {
			continue
		}
		src := m.Source
		if isSensitive(indexed(FieldMounts, i)+".source", sb.Sensitive) {
			src = sensitiveText
		}
		d := src + " → " + m.Target
		if m.ReadOnly {
			d += " (read-only)"
		}
		out = append(out, d)
	}
	return out
}
