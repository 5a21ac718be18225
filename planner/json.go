package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// JSONFormatVersion is the format_version of sbx plan --json. It changes only when a field
// changes meaning or disappears; new fields may be added within a version.
const JSONFormatVersion = "1"

// JSONPlan is the document sbx plan --json writes (schema: planner/SCHEMA.md). Every key is
// always present; lists are [] rather than null.
//
//	{
//	  "format_version": "1",
//	  "state_lineage": "5b0c…",      // "" when no state was ever written
//	  "state_serial": 7,              // the serial of the state the plan was computed from
//	  "targets": ["api"],             // [] = the whole Sandboxfile
//	  "no_deps": false,
//	  "changes": true,                // false = "No changes."
//	  "summary": {"create": 0, "replace": 1, "destroy": 0, "start": 0, "update": 0},
//	  "steps": [JSONStep…],           // in apply order
//	  "problems": [JSONProblem…]      // failed static checks; non-empty = cannot be applied
//	}
type JSONPlan struct {
	FormatVersion string        `json:"format_version"`
	StateLineage  string        `json:"state_lineage"`
	StateSerial   uint64        `json:"state_serial"`
	Targets       []string      `json:"targets"`
	NoDeps        bool          `json:"no_deps"`
	Changes       bool          `json:"changes"`
	Summary       JSONSummary   `json:"summary"`
	Steps         []JSONStep    `json:"steps"`
	Problems      []JSONProblem `json:"problems"`
}

// JSONSummary counts the steps by action.
type JSONSummary struct {
	Create  int `json:"create"`
	Replace int `json:"replace"`
	Destroy int `json:"destroy"`
	Start   int `json:"start"`
	Update  int `json:"update"`
}

// JSONStep is one step:
//
//	{
//	  "sandbox": "db",
//	  "action": "replace",            // create | destroy | replace | start | update
//	  "reason": "spec changed",       // "" for create
//	  "status": "running",            // observed before the step: running | stopped | crashed | unknown; "" for create
//	  "depends_on": ["cache"],        // steps that must be done first
//	  "image": "postgres:16",         // desired image (recorded one for destroy); "(sensitive)" when sensitive
//	  "image_digest": "sha256:…",     // known manifest digest of that image, or ""
//	  "changes": [JSONChange…]        // replace and update only; [] otherwise
//	  "discards": ["writable layer"]  // data the step deletes; [] when none
//	}
type JSONStep struct {
	Sandbox     string       `json:"sandbox"`
	Action      string       `json:"action"`
	Reason      string       `json:"reason"`
	Status      string       `json:"status"`
	DependsOn   []string     `json:"depends_on"`
	Image       string       `json:"image"`
	ImageDigest string       `json:"image_digest"`
	Changes     []JSONChange `json:"changes"`
	Discards    []string     `json:"discards"`
}

// JSONChange is one changed field:
//
//	{
//	  "field": "env.PGHOST",          // field path, see SCHEMA.md
//	  "old": "10.88.0.10",            // JSON value; null when not declared or sensitive
//	  "new": "10.88.0.11",
//	  "sensitive": false,             // true: old and new are withheld
//	  "forces_replacement": true
//	}
type JSONChange struct {
	Field             string `json:"field"`
	Old               any    `json:"old"`
	New               any    `json:"new"`
	Sensitive         bool   `json:"sensitive"`
	ForcesReplacement bool   `json:"forces_replacement"`
}

// JSONProblem is a failed static check: {"sandbox": "db", "field": "ports[0]", "message": "…"}.
type JSONProblem struct {
	Sandbox string `json:"sandbox"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// JSON returns the plan as its --json document.
func (p *Plan) JSON() *JSONPlan {
	sum := p.Summary()
	out := &JSONPlan{
		FormatVersion: JSONFormatVersion,
		StateLineage:  p.Lineage,
		StateSerial:   p.Serial,
		Targets:       nonNil(p.Targets),
		NoDeps:        p.NoDeps,
		Changes:       p.HasChanges(),
		Summary:       JSONSummary(sum),
		Steps:         make([]JSONStep, 0, len(p.Steps)),
		Problems:      make([]JSONProblem, 0, len(p.Problems)),
	}
	for _, s := range p.Steps {
		js := JSONStep{
			Sandbox:     s.Sandbox,
			Action:      string(s.Action),
			Reason:      s.Reason,
			Status:      string(s.Status),
			DependsOn:   nonNil(s.DependsOn),
			ImageDigest: s.ImageDigest,
			Changes:     make([]JSONChange, 0, len(s.Changes)),
			Discards:    nonNil(s.Discards),
		}
		switch {
		case s.Desired != nil:
			js.Image = s.Desired.Image
			if isSensitive(FieldImage, s.Desired.Sensitive) {
				js.Image = sensitiveText
			}
		case s.Prior != nil:
			js.Image = s.Prior.Spec.Image // redacted in the state already
			js.ImageDigest = s.Prior.ImageDigest
		}
		for _, c := range s.Changes {
			js.Changes = append(js.Changes, JSONChange(c))
		}
		out.Steps = append(out.Steps, js)
	}
	for _, pr := range p.Problems {
		out.Problems = append(out.Problems, JSONProblem{Sandbox: pr.Sandbox, Field: pr.Field, Message: pr.Message})
	}
	return out
}

// WriteJSON writes the plan's --json document, indented, with a final newline.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p.JSON()); err != nil {
		return fmt.Errorf("write plan as JSON: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
