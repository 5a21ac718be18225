package lang

import (
	"fmt"
	"sort"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// The schemas are functions, not package variables, so nothing mutable is shared between loads.

func rootSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "project"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "network", LabelNames: []string{"name"}},
		{Type: "volume", LabelNames: []string{"name"}},
		{Type: "sandbox", LabelNames: []string{"name"}},
	}}
}

func projectSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "driver"}, {Name: "allow_host_paths"}}}
}

func variableSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
	}
}

func validationSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true}, {Name: "error_message", Required: true},
	}}
}

func networkSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "subnet", Required: true}}}
}

// sandboxAttrs are the attributes of a sandbox block evaluated in phase 2.
func sandboxAttrs() []hcl.AttributeSchema {
	names := []string{"image", "cpus", "memory", "pids", "entrypoint", "command", "workdir", "env",
		"env_file", "user", "rlimits", "restart", "stop_timeout", "depends_on"}
	out := make([]hcl.AttributeSchema, len(names))
	for i, n := range names {
		out[i] = hcl.AttributeSchema{Name: n}
	}
	return out
}

// sandboxSchema is the whole sandbox body, used once per sandbox to report unknown
// attributes and blocks.
func sandboxSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: sandboxAttrs(),
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "mount"}, {Type: "port"}, {Type: "network"}, {Type: "ready"}, {Type: "watch"},
			{Type: "dynamic", LabelNames: []string{"type"}},
		},
	}
}

// phase1Schema holds what is evaluated before sandbox.* exists: ports and the network block.
func phase1Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "port"}, {Type: "network"}}}
}

// phase2Schema holds everything else.
func phase2Schema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: sandboxAttrs(),
		Blocks:     []hcl.BlockHeaderSchema{{Type: "mount"}, {Type: "ready"}, {Type: "watch"}},
	}
}

// volumeSchema is the body of a volume block: empty for now (drivers and options may come).
func volumeSchema() *hcl.BodySchema { return &hcl.BodySchema{} }

func mountSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source"}, {Name: "volume"}, {Name: "target"}, {Name: "read_only"}}}
}

func portSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "host"}, {Name: "guest"}, {Name: "host_ip"}, {Name: "protocol"}}}
}

func sandboxNetworkSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "scope"}, {Name: "group"}, {Name: "ip"}}}
}

func readySchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "tcp"}, {Name: "http"}, {Name: "log"}, {Name: "timeout"}, {Name: "interval"},
	}}
}

func watchSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "paths"}, {Name: "ignore"}}}
}

// didYouMean returns the option closest to given, or "" when none is close enough.
func didYouMean(given string, options []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), options...)
	sort.Strings(sorted)
	for _, o := range sorted {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	return best
}

// suggest formats a did-you-mean hint, with a leading space, or "".
func suggest(given string, options []string) string {
	if s := didYouMean(given, options); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}
