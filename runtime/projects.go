package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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

// ImagesInUse returns the image references and manifest digests recorded in the state of
// every registered project whose state still exists. Projects whose directory or state is
// gone are forgotten.
func ImagesInUse(home string) (refs, digests []string, err error) {
	entries, err := os.ReadDir(projectsDir(home))
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list the projects using the image store: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(projectsDir(home), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		dir := strings.TrimSpace(string(b))
		store := state.New(dir)
		if _, err := os.Stat(store.StatePath()); os.IsNotExist(err) {
			_ = os.Remove(path)
			continue
		}
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
