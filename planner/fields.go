package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/lang"
)

// Field paths of a sandbox spec, as they appear in plans and in Record.Fingerprints. Maps and
// lists are split into one field per key or index ("env.PGUSER", "rlimits.NOFILE",
// "mounts[0]", "ports[1]") so a plan names exactly what changed.
//
// Every field forces replacement except "watch": the watch block only configures the watcher in
// sbx up --watch, nothing inside the sandbox, so a change to it updates the record in place
// without a restart. Replacement is the simplest honest rule: the drivers cannot change any
// other setting of a running microVM.
const (
	FieldImage       = "image"
	FieldImageDigest = "image_digest"
	FieldCPUs        = "cpus"
	FieldMemory      = "memory"
	FieldPids        = "pids"
	FieldEntrypoint  = "entrypoint"
	FieldCommand     = "command"
	FieldWorkdir     = "workdir"
	FieldEnvPrefix   = "env."
	FieldEnvFiles    = "env_files"
	FieldUser        = "user"
	FieldRlimPrefix  = "rlimits."
	FieldMounts      = "mounts"
	FieldPorts       = "ports"
	FieldNetScope    = "network.scope"
	FieldNetGroup    = "network.group"
	FieldNetIP       = "network.ip"
	FieldRestart     = "restart"
	FieldStopTimeout = "stop_timeout"
	FieldReady       = "ready"
	FieldDependsOn   = "depends_on"
	FieldWatch       = "watch"
	// FieldDriver is not declared in the sandbox block: it is the driver that runs it (project
	// driver, --driver or SBX_DRIVER). Moving a sandbox to another driver replaces it.
	FieldDriver = "driver"
)

// sensitiveText replaces sensitive values in the state and in plans.
const sensitiveText = "(sensitive)"

// field is one fingerprinted value of a spec.
type field struct {
	path  string
	value any // what is fingerprinted and shown; nil when not declared
}

// forcesReplacement reports whether a change of the field at path needs a new sandbox.
func forcesReplacement(path string) bool { return path != FieldWatch }

func (f field) fingerprint() string {
	b := canonical(f.value)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical is the canonical JSON encoding of a field value: encoding/json sorts map keys and
// writes struct fields in declaration order, and every value type here is a string, number,
// bool, list or one of the struct types below.
func canonical(v any) []byte {
	switch v := v.(type) {
	case nil:
		return []byte("null")
	case string:
		// Fast path for the common string that encoding/json writes unchanged between quotes;
		// the bytes are the same as json.Marshal's, so fingerprints do not depend on it.
		if plainJSONString(v) {
			b := make([]byte, 0, len(v)+2)
			return append(append(append(b, '"'), v...), '"')
		}
	case int:
		return strconv.AppendInt(nil, int64(v), 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable: field values are plain data. Keep a stable, visible fingerprint anyway.
		return fmt.Appendf(nil, "%q", err.Error())
	}
	return b
}

// plainJSONString reports whether encoding/json writes s as itself between quotes: printable
// ASCII without '"', '\\' and the HTML characters it escapes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// readyValue is how a ready block is fingerprinted and shown.
type readyValue struct {
	TCP      int    `json:"tcp,omitempty"`
	HTTP     string `json:"http,omitempty"`
	Log      string `json:"log,omitempty"`
	Timeout  string `json:"timeout"`
	Interval string `json:"interval"`
}

// watchValue is how a watch block is fingerprinted and shown.
type watchValue struct {
	Paths  []string `json:"paths"`
	Ignore []string `json:"ignore,omitempty"`
}

// mountValue and portValue are the shown forms of mounts and ports; they mirror lang's JSON so
// a change of lang's struct tags does not change every fingerprint.
type mountValue struct {
	Source   string `json:"source"`
	Volume   string `json:"volume,omitempty"` // omitted for host paths: their fingerprints stay as they were
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

type portValue struct {
	HostIP   string `json:"host_ip"`
	Host     int    `json:"host"`
	Guest    int    `json:"guest"`
	Protocol string `json:"protocol"`
}

func strs(s []string) any {
	if s == nil {
		return nil
	}
	return s
}

func duration(d time.Duration) string { return d.String() }

// fields returns the declared fields of sb, in a stable order.
func fields(sb *lang.Sandbox) []field {
	fs := make([]field, 0, 16+len(sb.Env)+len(sb.Rlimits)+len(sb.Mounts)+len(sb.Ports))
	fs = append(fs,
		field{FieldImage, sb.Image},
		field{FieldCPUs, sb.CPUs},
		field{FieldMemory, fmt.Sprintf("%dMiB", sb.MemoryMiB)},
		field{FieldEntrypoint, strs(sb.Entrypoint)},
		field{FieldCommand, strs(sb.Command)},
		field{FieldWorkdir, sb.Workdir},
	)
	if sb.Pids != 0 && sb.Pids != lang.DefaultPids {
		// Only a limit other than the default is a field, so records written before pids
		// existed plan no change.
		fs = append(fs, field{FieldPids, sb.Pids})
	}
	keys := make([]string, 0, len(sb.Env))
	for k := range sb.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fs = append(fs, field{FieldEnvPrefix + k, sb.Env[k]})
	}
	fs = append(fs, field{FieldEnvFiles, strs(sb.EnvFiles)}, field{FieldUser, sb.User})
	for _, r := range sb.Rlimits {
		fs = append(fs, field{FieldRlimPrefix + r.Resource, fmt.Sprintf("%d:%d", r.Soft, r.Hard)})
	}
	for i, m := range sb.Mounts {
		fs = append(fs, field{indexed(FieldMounts, i), mountValue{Source: m.Source, Volume: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly}})
	}
	for i, p := range sb.Ports {
		fs = append(fs, field{indexed(FieldPorts, i), portValue(p)})
	}
	ip := ""
	if sb.Network.IP.IsValid() {
		ip = sb.Network.IP.String()
	}
	fs = append(fs,
		field{FieldNetScope, sb.Network.Scope},
		field{FieldNetGroup, sb.Network.Group},
		field{FieldNetIP, ip},
		field{FieldRestart, sb.Restart},
		field{FieldStopTimeout, duration(sb.StopTimeout)},
	)
	if sb.Ready != nil {
		r := sb.Ready
		fs = append(fs, field{FieldReady, readyValue{r.TCP, r.HTTP, r.Log, duration(r.Timeout), duration(r.Interval)}})
	} else {
		fs = append(fs, field{FieldReady, nil})
	}
	fs = append(fs, field{FieldDependsOn, strs(sb.DependsOn)})
	if sb.Watch != nil {
		fs = append(fs, field{FieldWatch, watchValue{strs2(sb.Watch.Paths), sb.Watch.Ignore}})
	} else {
		fs = append(fs, field{FieldWatch, nil})
	}
	return fs
}

func strs2(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func indexed(name string, i int) string { return fmt.Sprintf("%s[%d]", name, i) }

// isSensitive reports whether the field at path shows a value derived from a sensitive one:
// a sensitive path equals it, lies inside it ("mounts[0].source" inside "mounts[0]") or
// contains it.
func isSensitive(path string, sensitive []string) bool {
	for _, s := range sensitive {
		if s == path || within(s, path) || within(path, s) {
			return true
		}
	}
	return false
}

// within reports whether path inner lies inside path outer.
func within(inner, outer string) bool {
	return len(inner) > len(outer) && strings.HasPrefix(inner, outer) &&
		(inner[len(outer)] == '.' || inner[len(outer)] == '[')
}

// redact returns a copy of sb with the values of its sensitive fields replaced by
// "(sensitive)". Paths it does not know how to redact are hidden in plans all the same.
func redact(sb *lang.Sandbox) lang.Sandbox {
	out := *sb
	if len(sb.Sensitive) == 0 {
		return out
	}
	// Copy what is edited in place so sb itself is never changed.
	out.Sensitive = slices.Clone(sb.Sensitive)
	out.Env = maps.Clone(sb.Env)
	out.Mounts = slices.Clone(sb.Mounts)
	hidden := []string{sensitiveText}
	for _, p := range sb.Sensitive {
		switch {
		case p == FieldImage:
			out.Image = sensitiveText
		case p == FieldWorkdir:
			out.Workdir = sensitiveText
		case p == FieldUser:
			out.User = sensitiveText
		case p == FieldEntrypoint || within(p, FieldEntrypoint):
			out.Entrypoint = hidden
		case p == FieldCommand || within(p, FieldCommand):
			out.Command = hidden
		case p == FieldEnvFiles || within(p, FieldEnvFiles):
			out.EnvFiles = hidden
		case p == "env":
			for k := range out.Env {
				out.Env[k] = sensitiveText
			}
		case strings.HasPrefix(p, FieldEnvPrefix):
			if k := strings.TrimPrefix(p, FieldEnvPrefix); out.Env != nil {
				if _, ok := out.Env[k]; ok {
					out.Env[k] = sensitiveText
				}
			}
		case strings.HasPrefix(p, FieldMounts+"["):
			for i := range out.Mounts {
				base := indexed(FieldMounts, i)
				if p == base || p == base+".source" {
					out.Mounts[i].Source = sensitiveText
				}
				if p == base || p == base+".target" {
					out.Mounts[i].Target = sensitiveText
				}
			}
		}
	}
	return out
}
