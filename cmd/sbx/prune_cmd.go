package main

import (
	"fmt"

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
	// What this project's sandboxes run stays, whatever the flags. Other projects' sandboxes
	// are unknown here: --all is for when this is the only project, and says so.
	var opts image.PruneOptions
	opts.All = c.All
	if dir, err := a.projectDir(); err == nil {
		if st, _, err := observed(dir); err == nil {
			for _, name := range st.Names() {
				rec := st.Record(name)
				if rec.ImageDigest != "" {
					opts.Keep = append(opts.Keep, rec.ImageDigest)
				}
				opts.InUse = append(opts.InUse, rec.Spec.Image)
			}
		}
	}
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
