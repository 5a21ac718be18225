package main

import (
	"errors"
	"fmt"

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
		seen := map[string]bool{}
		names := c.Targets
		if len(names) == 0 {
			for _, s := range cfg.Sandboxes {
				names = append(names, s.Name)
			}
		}
		for _, n := range names {
			sb := cfg.Sandbox(n)
			if sb == nil {
				return fmt.Errorf("no sandbox %q in %s", n, displayPath(cfg.File))
			}
			if !seen[sb.Image] {
				seen[sb.Image] = true
				refs = append(refs, sb.Image)
			}
		}
	}
	store, err := a.imageStore(image.WithInsecureRegistries(c.InsecureRegistry))
	if err != nil {
		return err
	}
	progress := image.NewProgress(a.stdout, a.tty)
	type result struct {
		img *image.Image
		err error
	}
	results := make([]result, len(refs))
	sem := make(chan struct{}, max(c.Parallel, 1))
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
		d := r.img.Digest
		if d == "" {
			d = "(directory, used in place)"
		}
		fmt.Fprintf(a.stdout, "%s %s\n", refs[i], d)
	}
	return errors.Join(errs...)
}
