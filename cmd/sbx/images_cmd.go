package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/sbx-dev/sbx/runtime/image"
)

type imagesCmd struct {
	JSON bool `help:"Print the images as a JSON array of {ref, digest, platform, size, pulled, last_used}."`
}

func (c *imagesCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	store, err := a.imageStore()
	if err != nil {
		return err
	}
	entries, err := store.List(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(a.stdout, "No images: 'sbx pull' fetches the images of the Sandboxfile.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tDIGEST\tSIZE\tLAST USED")
	now := time.Now()
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\n", e.Ref, shortDigest(e.Digest), image.HumanBytes(e.Size), humanDuration(now.Sub(e.LastUsed)))
	}
	return tw.Flush()
}
