// Package convert holds what the importers (convert/compose, convert/microsandbox) and the
// exporter (convert/kube) share: the notes they give about what they could not carry over, and
// the limits they put on their input.
//
// Data flows from lang outwards: convert reads lang's resolved configs and writes Sandboxfile
// text, never the other way round, and imports nothing from planner or runtime.
package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/sbx-dev/sbx/lang"
	"go.yaml.in/yaml/v3"
)

// MaxInputSize is the largest file an importer reads. Real compose and microsandbox files are
// a few KiB; anything near this size is a mistake or an attack, never a project.
const MaxInputSize = 4 << 20

// Note is one thing an importer or exporter could not carry over as it was: a key with no
// equivalent, a value it changed, a choice it made. Subject is the service or sandbox (empty
// for the file as a whole), Key the key in the input ("privileged", "deploy.replicas").
type Note struct {
	Subject string
	Key     string
	Message string
}

// String is "web: privileged: no equivalent in sbx" (one line, as printed on stderr).
func (n Note) String() string {
	s := n.Message
	if n.Key != "" {
		s = n.Key + ": " + s
	}
	if n.Subject != "" {
		s = n.Subject + ": " + s
	}
	return s
}

// SortNotes orders notes by subject, then key, keeping the order of notes on the same key.
func SortNotes(notes []Note) {
	sort.SliceStable(notes, func(i, j int) bool {
		if notes[i].Subject != notes[j].Subject {
			return notes[i].Subject < notes[j].Subject
		}
		return notes[i].Key < notes[j].Key
	})
}

// ErrTooLarge is returned (wrapped) for an input over MaxInputSize.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads a whole input file, refusing one over MaxInputSize before reading it all.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, path)
}

// ReadAll reads r (named name in errors) up to MaxInputSize.
func ReadAll(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("%s: %w: more than %d MiB; sbx reads files of at most %d MiB (is it the right file?)", name, ErrTooLarge, MaxInputSize>>20, MaxInputSize>>20)
	}
	return data, nil
}

// MaxYAMLNodes bounds the size of a YAML document once its aliases are expanded. The YAML
// parsers expand aliases as they decode, so a few hundred bytes of nested aliases (the
// "billion laughs") can stand for billions of nodes; a Compose file of 50 services has a few
// thousand.
const MaxYAMLNodes = 200_000

// ErrYAMLBomb is returned (wrapped) by CheckYAML for a document whose aliases expand past
// MaxYAMLNodes.
var ErrYAMLBomb = errors.New("YAML aliases expand too far")

// CheckYAML parses data without expanding aliases and refuses it when the expanded documents
// would have more than MaxYAMLNodes nodes. A syntax error is returned as it is (the loader
// that follows would report the same).
func CheckYAML(data []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	total := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sizes := map[*yaml.Node]int{}
		n, ok := expandedSize(&doc, sizes, map[*yaml.Node]bool{})
		total += n
		if !ok || total > MaxYAMLNodes {
			return fmt.Errorf("%s: %w: its aliases (*name) expand to more than %d values; write the values out, or use fewer nested aliases", name, ErrYAMLBomb, MaxYAMLNodes)
		}
	}
}

// expandedSize counts the nodes of n with aliases expanded, stopping early past MaxYAMLNodes;
// false means too large or an alias cycle.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, active map[*yaml.Node]bool) (int, bool) {
	if n == nil {
		return 0, true
	}
	if v, ok := memo[n]; ok {
		return v, true
	}
	if active[n] {
		return 0, false
	}
	active[n] = true
	defer delete(active, n)
	size := 1
	if n.Kind == yaml.AliasNode {
		s, ok := expandedSize(n.Alias, memo, active)
		if !ok {
			return 0, false
		}
		size = s
	}
	for _, c := range n.Content {
		s, ok := expandedSize(c, memo, active)
		if !ok {
			return 0, false
		}
		size += s
		if size > MaxYAMLNodes {
			return 0, false
		}
	}
	memo[n] = size
	return size, true
}

// SensitiveHostPath says why a host path must not be mounted into a sandbox, or "": lang's
// host path policy, which refuses such mounts unless the project lists them in
// allow_host_paths; an import never adds that consent on its own.
func SensitiveHostPath(p, project string) string {
	env := map[string]string{"HOME": os.Getenv("HOME"), "SBX_HOME": os.Getenv("SBX_HOME")}
	return lang.SensitiveHostPath(p, project, env)
}
