package main

import (
	"fmt"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
)

type pruneCmd struct {
	All bool `help:"Also forget images that no sandbox of this project uses (and free their data)."`
}

func (c *pruneCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	store, err := a.imageStore()
	if err != nil {
		return err
	}
	// What any project's sandboxes run stays, whatever the flags; with --all, so do the
	// images this project's Sandboxfile names.
	var opts image.PruneOptions
	opts.All = c.All
	refs, digests, err := runtime.ImagesInUse(store.Root())
	if err != nil {
		return fmt.Errorf("prune: cannot tell which images are in use: %w", err)
	}
	opts.InUse, opts.Keep = refs, digests
	if cfg, err := a.loadQuiet(); err == nil {
		for _, s := range cfg.Sandboxes {
			opts.InUse = append(opts.InUse, s.Image)
		}
	}
	freed, err := store.Prune(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Freed %s: %d images, %d blobs, %d layers.\n", image.HumanBytes(freed.Bytes), freed.Images, freed.Blobs, freed.Layers)
	return nil
}
