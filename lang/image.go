package lang

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Local image source prefixes accepted besides registry references.
const (
	ImageOCILayout     = "oci-layout:"
	ImageDockerArchive = "docker-archive:"
	ImageDir           = "dir:"
)

// normalizeImage checks an image reference and makes the path of a local source absolute.
func (l *loader) normalizeImage(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("the image must not be empty; use a registry reference like \"docker.io/library/alpine:3.20\" or a local source (oci-layout:PATH, docker-archive:FILE, dir:PATH)")
	}
	switch {
	case strings.HasPrefix(s, ImageOCILayout):
		rest := strings.TrimPrefix(s, ImageOCILayout)
		path, suffix := rest, ""
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			path, suffix = rest[:i], rest[i:]
			if !regexp.MustCompile(`^@sha256:[0-9a-f]{64}$`).MatchString(suffix) {
				return "", fmt.Errorf("%q has an invalid digest; use @sha256:<64 hex digits>", s)
			}
		} else if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
			path, suffix = rest[:i], rest[i:]
			if _, err := name.NewTag("example.com/x"+suffix, name.StrictValidation); err != nil {
				return "", fmt.Errorf("%q has an invalid tag %q", s, suffix[1:])
			}
		}
		if path == "" {
			return "", fmt.Errorf("%q names no directory; use oci-layout:PATH[:tag|@digest]", s)
		}
		return ImageOCILayout + l.abs(path) + suffix, nil
	case strings.HasPrefix(s, ImageDockerArchive):
		path := strings.TrimPrefix(s, ImageDockerArchive)
		if path == "" {
			return "", fmt.Errorf("%q names no file; use docker-archive:FILE.tar (what docker save writes)", s)
		}
		return ImageDockerArchive + l.abs(path), nil
	case strings.HasPrefix(s, ImageDir):
		path := strings.TrimPrefix(s, ImageDir)
		if path == "" {
			return "", fmt.Errorf("%q names no directory; use dir:PATH", s)
		}
		return ImageDir + l.abs(path), nil
	}
	if _, err := name.ParseReference(s); err != nil {
		return "", fmt.Errorf("%q is not a valid image reference: %s; use a reference like \"docker.io/library/alpine:3.20\" or a local source (oci-layout:PATH, docker-archive:FILE, dir:PATH)", s, err)
	}
	return s, nil
}
