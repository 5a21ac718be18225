package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sbx-dev/sbx/runtime/state"
)

// Named volumes live in .sbx/volumes/NAME: down keeps them, down --volumes removes them.

// VolumeDir is where the volume name keeps its data.
func (p *Project) VolumeDir(name string) string {
	return filepath.Join(p.Store.Dir(), "volumes", name)
}

// EnsureVolume creates the volume name when missing and returns its directory. The
// directory itself is 0755 so that a payload running as any user can read it (it is reached
// only through the sandbox's mount: .sbx/ above it is 0700).
func (p *Project) EnsureVolume(name string) (string, error) {
	if err := state.EnsureDirs(p.Store.Dir(), "volumes"); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	dir := p.VolumeDir(name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := state.CheckDir(dir); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	return dir, nil
}

// Volume is a named volume of the project on disk.
type Volume struct {
	Name  string
	Dir   string
	Bytes int64 // the size of what it holds
}

// Volumes lists the project's volumes, sorted by name.
func (p *Project) Volumes() ([]Volume, error) {
	entries, err := os.ReadDir(filepath.Join(p.Store.Dir(), "volumes"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v := Volume{Name: e.Name(), Dir: p.VolumeDir(e.Name())}
		_ = filepath.WalkDir(v.Dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					v.Bytes += fi.Size()
				}
			}
			return nil
		})
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveVolumes deletes the named volumes (all when names is empty) and what they hold.
func (p *Project) RemoveVolumes(names []string) ([]string, error) {
	if len(names) == 0 {
		vs, err := p.Volumes()
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			names = append(names, v.Name)
		}
	}
	var removed []string
	for _, n := range names {
		if err := state.RemoveBeneath(p.Store.Dir(), filepath.Join("volumes", n)); err != nil {
			return removed, fmt.Errorf("remove volume %s: %w", n, err)
		}
		removed = append(removed, n)
	}
	return removed, nil
}
