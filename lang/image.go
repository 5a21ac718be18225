package lang

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/sbx-dev/sbx/lang/imageref"
)

// normalizeImage parses an image reference and makes the path of a local source absolute
// against the Sandboxfile's directory. It returns the path as written too, for messages.
func (l *loader) normalizeImage(s string) (imageref.Ref, string, error) {
	ref, err := imageref.Parse(s)
	if err != nil {
		return imageref.Ref{}, "", err
	}
	written := ref.Path
	if ref.Kind != imageref.Registry {
		ref.Path = l.abs(ref.Path)
	}
	return ref, written, nil
}

// imageFix says how to provide a missing local source.
var imageFix = map[imageref.Kind]string{
	imageref.OCILayout:     "Build the image into it first (for example skopeo copy docker://IMAGE oci:DIR:TAG), or fix the path.",
	imageref.DockerArchive: "Write it first with docker save -o FILE IMAGE, or fix the path.",
	imageref.Dir:           "Put the root filesystem there first, or fix the path.",
}

// decodeImage checks a sandbox's image: the syntax, that a dir: root is no sensitive host
// path, and that a local source is on disk now, so validate and plan find a typo rather than
// up.
func (l *loader) decodeImage(sb *sbDecl, a *hcl.Attribute) {
	s, ok := l.str(a, stageAll, sb, "image")
	if !ok {
		return
	}
	rng := a.Expr.Range()
	ref, written, err := l.normalizeImage(s)
	if err != nil {
		l.errorf(&rng, "Invalid image reference", "%s", sentence(err))
		return
	}
	if ref.Kind == imageref.Dir && l.sensitive(rng, "image", ref.Path, l.checkHostPath(ref.Path)) {
		return
	}
	if err := ref.Check(written); err != nil {
		var me *imageref.MissingError
		msg := err.Error()
		if errors.As(err, &me) && !filepath.IsAbs(written) {
			msg += " (relative to the Sandboxfile's directory)"
		}
		l.errorf(&rng, "Missing image source", "%s%s. %s", strings.ToUpper(msg[:1]), msg[1:], imageFix[ref.Kind])
		return
	}
	sb.out.Image = ref.String()
}
