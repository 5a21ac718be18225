package runtime

import (
	"context"
	"errors"
	"strings"

	"github.com/sbx-dev/sbx/lang/imageref"
	"github.com/sbx-dev/sbx/runtime/image"
)

// StoreImages serves images from the image store, pulling only those it does not hold yet.
type StoreImages struct {
	Store *image.Store
	// Progress, when set, gives the progress reporter of one pull.
	Progress func(ref string) image.Progress
}

// Ensure returns ref from the store, pulling it first when it is missing.
func (s StoreImages) Ensure(ctx context.Context, ref string) (*Image, error) {
	// Local sources are read again every time (cheap, and a rebuilt layout is seen); registry
	// images are pulled only when missing.
	local := strings.HasPrefix(ref, imageref.PrefixOCILayout) || strings.HasPrefix(ref, imageref.PrefixDockerArchive)
	var img *image.Image
	var err error
	if !local {
		img, err = s.Store.Lookup(ctx, ref)
		if err != nil && !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	if img == nil {
		var opts []image.PullOption
		if s.Progress != nil {
			opts = append(opts, image.WithProgress(s.Progress(ref)))
		}
		img, err = s.Store.Pull(ctx, ref, opts...)
		if err != nil {
			return nil, err
		}
	}
	c := img.Config
	return &Image{
		Digest:  img.Digest,
		Layers:  img.LayerDirs,
		RootDir: img.RootDir,
		Config: ImageConfig{
			Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		},
	}, nil
}

// Digests returns the manifest digest each image reference would run with, as far as this
// machine knows without the network: what the store holds for a registry reference or a
// docker archive (a tag that moved is seen after sbx pull or up --pull, never silently), and
// what an OCI layout on disk says now (reading its index is cheap, and a rebuilt layout is
// what the user means). References the store has never seen, and dir: images, are left out:
// the plan then keeps the recorded digest.
func (s StoreImages) Digests(ctx context.Context, refs []string) map[string]string {
	out := map[string]string{}
	for _, ref := range refs {
		var d string
		var err error
		if strings.HasPrefix(ref, imageref.PrefixOCILayout) {
			d, err = s.Store.Resolve(ctx, ref)
		} else {
			d, err = s.Store.Digest(ctx, ref)
		}
		if err == nil && d != "" {
			out[ref] = d
		}
	}
	return out
}
