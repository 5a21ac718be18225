// Package imageref is the one definition of the image references a Sandboxfile may use:
// registry references and the local sources sbx reads without a registry. lang checks them
// (syntax, and that a local source is there) and runtime/image opens them; both take the
// prefixes and the syntax from here.
//
//   - a registry reference, by go-containerregistry's rules (Docker Hub by default);
//   - "oci-layout:PATH", "oci-layout:PATH:TAG" or "oci-layout:PATH@sha256:HEX": an OCI image
//     layout directory;
//   - "docker-archive:FILE" or "docker-archive:FILE:REPO:TAG": what docker save writes;
//   - "dir:PATH": a ready root filesystem.
package imageref

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Prefixes of the local sources.
const (
	PrefixOCILayout     = "oci-layout:"
	PrefixDockerArchive = "docker-archive:"
	PrefixDir           = "dir:"
)

// Kind is the kind of source a reference names.
type Kind int

// Kinds of source.
const (
	Registry Kind = iota
	OCILayout
	DockerArchive
	Dir
)

// Ref is a parsed image reference.
type Ref struct {
	Kind Kind
	// Name is a registry reference as written; empty for local sources.
	Name string
	// Path is the file or directory of a local source, as written (relative or absolute).
	Path string
	// Tag selects an image in an OCI layout (by its org.opencontainers.image.ref.name) or, as
	// REPO:TAG, in a docker archive holding several.
	Tag string
	// Digest selects an image in an OCI layout: "sha256:" and 64 hex digits.
	Digest string
}

// Usage is what a message about a bad reference suggests.
const Usage = `a registry reference like "docker.io/library/alpine:3.20" or a local source (oci-layout:PATH, docker-archive:FILE, dir:PATH)`

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Parse parses an image reference. It checks the syntax only; Check looks at the disk.
func Parse(s string) (Ref, error) {
	if strings.TrimSpace(s) == "" {
		return Ref{}, fmt.Errorf("the image must not be empty; use %s", Usage)
	}
	switch {
	case strings.HasPrefix(s, PrefixOCILayout):
		rest := strings.TrimPrefix(s, PrefixOCILayout)
		r := Ref{Kind: OCILayout, Path: rest}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			r.Path, r.Digest = rest[:i], rest[i+1:]
			if !digestRE.MatchString(r.Digest) {
				return Ref{}, fmt.Errorf("%q has an invalid digest; use @sha256:<64 hex digits>", s)
			}
		} else if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
			r.Path, r.Tag = rest[:i], rest[i+1:]
			if _, err := name.NewTag("example.com/x:"+r.Tag, name.StrictValidation); err != nil {
				return Ref{}, fmt.Errorf("%q has an invalid tag %q", s, r.Tag)
			}
		}
		if r.Path == "" {
			return Ref{}, fmt.Errorf("%q names no directory; use oci-layout:PATH[:tag|@digest]", s)
		}
		return r, nil
	case strings.HasPrefix(s, PrefixDockerArchive):
		rest := strings.TrimPrefix(s, PrefixDockerArchive)
		r := Ref{Kind: DockerArchive, Path: rest}
		// FILE:REPO:TAG names one image of several; REPO:TAG has a colon of its own, so a
		// file name with one colon stays whole.
		if i := strings.Index(rest, ":"); i > 0 && strings.Contains(rest[i+1:], ":") {
			r.Path, r.Tag = rest[:i], rest[i+1:]
		}
		if r.Path == "" {
			return Ref{}, fmt.Errorf("%q names no file; use docker-archive:FILE.tar (what docker save writes)", s)
		}
		return r, nil
	case strings.HasPrefix(s, PrefixDir):
		r := Ref{Kind: Dir, Path: strings.TrimPrefix(s, PrefixDir)}
		if r.Path == "" {
			return Ref{}, fmt.Errorf("%q names no directory; use dir:PATH", s)
		}
		return r, nil
	}
	if _, err := name.ParseReference(s); err != nil {
		return Ref{}, fmt.Errorf("%q is not a valid image reference: %s; use %s", s, err, Usage)
	}
	return Ref{Kind: Registry, Name: s}, nil
}

// IsLocal reports whether s names a local source.
func IsLocal(s string) bool {
	return strings.HasPrefix(s, PrefixOCILayout) || strings.HasPrefix(s, PrefixDockerArchive) || strings.HasPrefix(s, PrefixDir)
}

// String writes the reference back in its canonical form.
func (r Ref) String() string {
	switch r.Kind {
	case OCILayout:
		switch {
		case r.Digest != "":
			return PrefixOCILayout + r.Path + "@" + r.Digest
		case r.Tag != "":
			return PrefixOCILayout + r.Path + ":" + r.Tag
		}
		return PrefixOCILayout + r.Path
	case DockerArchive:
		if r.Tag != "" {
			return PrefixDockerArchive + r.Path + ":" + r.Tag
		}
		return PrefixDockerArchive + r.Path
	case Dir:
		return PrefixDir + r.Path
	}
	return r.Name
}

// MissingError is Check's error: a local source that is not there, or not what its prefix
// says. Its text is the problem alone, like "no OCI layout at ./image".
type MissingError struct{ Problem string }

func (e *MissingError) Error() string { return e.Problem }

func missing(format string, args ...any) error {
	return &MissingError{Problem: fmt.Sprintf(format, args...)}
}

// Check looks at a local source on disk (a registry reference passes): an OCI layout is a
// directory with an oci-layout file and an index.json, a docker archive a file, a dir: root a
// directory. It looks no further (tags, digests and layers are the image store's to read), so
// it costs a few stats. Messages name the path as shown, which is the caller's way of
// writing Path (the user's relative path, say).
func (r Ref) Check(shown string) error {
	if r.Kind == Registry {
		return nil
	}
	st, err := os.Stat(r.Path)
	if err != nil {
		what := map[Kind]string{OCILayout: "OCI layout", DockerArchive: "docker archive", Dir: "directory"}[r.Kind]
		if errors.Is(err, os.ErrNotExist) {
			return missing("no %s at %s", what, shown)
		}
		return missing("%s %s: %s", what, shown, unwrapPathErr(err))
	}
	switch r.Kind {
	case OCILayout:
		if !st.IsDir() {
			return missing("%s is a file, not an OCI layout (a directory with an oci-layout file and an index.json)", shown)
		}
		for _, f := range []string{"oci-layout", "index.json"} {
			if _, err := os.Stat(filepath.Join(r.Path, f)); err != nil {
				return missing("%s is not an OCI layout: it has no %s file", shown, f)
			}
		}
	case DockerArchive:
		if st.IsDir() {
			return missing("%s is a directory, not a docker archive (docker save -o FILE.tar IMAGE writes one)", shown)
		}
	case Dir:
		if !st.IsDir() {
			return missing("%s is not a directory; dir: names a root filesystem", shown)
		}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
