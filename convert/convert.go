// Package convert holds what the importers (convert/compose, convert/microsandbox) and the
// exporter (convert/kube) share: the notes they give about what they could not carry over, and
// the limits they put on their input.
//
// Data flows from lang outwards: convert reads lang's resolved configs and writes Sandboxfile
// text, never the other way round, and imports nothing from planner or runtime.
package convert

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
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
