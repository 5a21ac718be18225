package main

import (
	"encoding/json"
	"fmt"
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
	table := [][]string{{"REFERENCE", "DIGEST", "SIZE", "LAST USED"}}
	now := time.Now()
	for _, e := range entries {
		table = append(table, []string{e.Ref, shortDigest(e.Digest), image.HumanBytes(e.Size), humanDuration(now.Sub(e.LastUsed)) + " ago"})
	}
	writeTable(a.stdout, table, func(_, _ int, cell string) string { return cell })
	return nil
}
