package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sbx-dev/sbx/runtime/diskfile"
	"github.com/sbx-dev/sbx/runtime/state"
)

// The projects directory of $SBX_HOME remembers every project that ran sandboxes with this
// image store, one file per project holding its directory, so that pruning the store keeps
// what any of them still uses, not only the project it is run from.

func projectsDir(home string) string { return filepath.Join(home, "projects") }

// RegisterProject records dir as a project using the image store at home.
func RegisterProject(home, dir string) error {
	sum := sha256.Sum256([]byte(dir))
	pd := projectsDir(home)
	if err := os.MkdirAll(pd, 0o700); err != nil {
		return fmt.Errorf("register the project: %w", err)
	}
	path := filepath.Join(pd, hex.EncodeToString(sum[:8]))
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == dir {
		return nil
	}
	return diskfile.WriteAtomic(path, []byte(dir+"\n"), 0o600)
}

// Projects returns the directories of the projects registered with the image store at home
// whose state still exists, sorted; registrations of projects whose directory or state is
// gone are forgotten.
func Projects(home string) ([]string, error) {
	entries, err := os.ReadDir(projectsDir(home))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the projects using the image store at %s: %w", home, err)
	}
	var dirs []string
	seen := map[string]bool{}
	for _, e := range entries {
		path := filepath.Join(projectsDir(home), e.Name())
		b, err := state.ReadFile(path)
		if err != nil {
			continue
		}
		dir := strings.TrimSpace(string(b))
		if !filepath.IsAbs(dir) || seen[dir] {
			continue
		}
		if _, err := os.Stat(state.New(dir).StatePath()); os.IsNotExist(err) {
			_ = os.Remove(path)
			continue
		}
		seen[dir] = true
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// ImagesInUse returns the image references and manifest digests recorded in the state of
// every registered project whose state still exists. Projects whose directory or state is
// gone are forgotten.
func ImagesInUse(home string) (refs, digests []string, err error) {
	dirs, err := Projects(home)
	if err != nil {
		return nil, nil, err
	}
	for _, dir := range dirs {
		store := state.New(dir)
		st, err := store.Read()
		if err != nil {
			// An unreadable state may still describe running sandboxes: keep everything
			// rather than guess.
			return nil, nil, err
		}
		for _, name := range st.Names() {
			r := st.Record(name)
			refs = append(refs, r.Spec.Image)
			if r.ImageDigest != "" {
				digests = append(digests, r.ImageDigest)
			}
		}
	}
	return refs, digests, nil
}
