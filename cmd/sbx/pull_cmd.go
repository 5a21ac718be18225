package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/image"
)

type pullCmd struct {
	Targets          []string `arg:"" optional:"" name:"sandbox" help:"Pull the images of these sandboxes (default: all)."`
	Image            []string `help:"Pull this image reference instead (repeatable)." placeholder:"REF"`
	InsecureRegistry []string `help:"Talk plain HTTP to this registry host[:port] (localhost and 127.0.0.1 always are)." placeholder:"HOST"`
	Parallel         int      `help:"How many images to pull at once." default:"4"`
}

func (c *pullCmd) Run(a *app) error {
	ctx, cancel := signalContext()
	defer cancel()
	refs := c.Image
	if len(refs) == 0 {
		cfg, err := a.load()
		if err != nil {
			return err
		}
		for _, n := range c.Targets {
			if cfg.Sandbox(n) == nil {
				return fmt.Errorf("no sandbox %q in %s", n, displayPath(cfg.File))
			}
		}
		refs = imageRefs(cfg, c.Targets)
	}
	return a.pullAll(ctx, refs, c.Parallel, true, image.WithInsecureRegistries(c.InsecureRegistry))
}

// imageRefs lists the images of the named sandboxes (all when names is empty), each once.
func imageRefs(cfg *lang.Config, names []string) []string {
	var refs []string
	seen := map[string]bool{}
	for _, sb := range cfg.Sandboxes {
		if len(names) > 0 && !slices.Contains(names, sb.Name) {
			continue
		}
		if !seen[sb.Image] {
			seen[sb.Image] = true
			refs = append(refs, sb.Image)
		}
	}
	return refs
}

// pullAll pulls refs, parallel at a time, with progress; with report it prints each
// reference's digest once done.
func (a *app) pullAll(ctx context.Context, refs []string, parallel int, report bool, opts ...image.Option) error {
	store, err := a.imageStore(opts...)
	if err != nil {
		return err
	}
	progress := image.NewProgress(a.stdout, a.tty)
	type result struct {
		img *image.Image
		err error
	}
	results := make([]result, len(refs))
	sem := make(chan struct{}, max(parallel, 1))
	done := make(chan int)
	for i, ref := range refs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			img, err := store.Pull(ctx, ref, image.WithProgress(progress))
			results[i] = result{img, err}
			done <- i
		}()
	}
	for range refs {
		<-done
	}
	progress.Wait()
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if !report {
			continue
		}
		d := r.img.Digest
		if d == "" {
			d = "(directory, used in place)"
		}
		fmt.Fprintf(a.stdout, "%s %s\n", refs[i], d)
	}
	return errors.Join(errs...)
}
