package watch

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Patterns is a list of gitignore-style patterns: "*.log" matches at any depth, "/build"
// only at the top, "tmp/" only directories, "**" any number of directories, and "!pat"
// re-includes what an earlier pattern ignored.
type Patterns struct {
	base  string // the directory the patterns are relative to
	rules []rule
}

type rule struct {
	pattern  string
	negate   bool
	dirOnly  bool
	anchored bool
}

// NewPatterns compiles patterns relative to base.
func NewPatterns(base string, lines []string) *Patterns {
	p := &Patterns{base: filepath.Clean(base)}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := rule{}
		if strings.HasPrefix(l, "!") {
			r.negate, l = true, l[1:]
		}
		if strings.HasSuffix(l, "/") {
			r.dirOnly, l = true, strings.TrimRight(l, "/")
		}
		if strings.HasPrefix(l, "/") {
			r.anchored, l = true, strings.TrimLeft(l, "/")
		} else if strings.Contains(l, "/") && !strings.HasPrefix(l, "**/") {
			r.anchored = true // gitignore: a slash inside anchors the pattern
		}
		r.pattern = l
		p.rules = append(p.rules, r)
	}
	return p
}

// ReadPatterns reads a .sbxignore-style file; a missing file is no patterns.
func ReadPatterns(file string) (*Patterns, error) {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return NewPatterns(filepath.Dir(file), nil), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return NewPatterns(filepath.Dir(file), lines), sc.Err()
}

// Match reports whether the absolute path p is ignored. A path outside the base never is.
func (ps *Patterns) Match(p string, isDir bool) bool {
	if ps == nil || len(ps.rules) == 0 {
		return false
	}
	rel, err := filepath.Rel(ps.base, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	rel = filepath.ToSlash(rel)
	ignored := false
	for _, r := range ps.rules {
		if r.negate == ignored && r.matches(rel, isDir) {
			ignored = !r.negate
		}
	}
	return ignored
}

// matches tests the rule against rel and each of its parent directories, since ignoring a
// directory ignores what it holds.
func (r rule) matches(rel string, isDir bool) bool {
	parts := strings.Split(rel, "/")
	for end := len(parts); end >= 1; end-- {
		sub := strings.Join(parts[:end], "/")
		subIsDir := isDir || end < len(parts)
		if r.dirOnly && !subIsDir {
			continue
		}
		if r.anchored || strings.Contains(r.pattern, "**") {
			if globMatch(r.pattern, sub) {
				return true
			}
			continue
		}
		// Unanchored: the pattern matches the last element at any depth.
		if ok, _ := path.Match(r.pattern, parts[end-1]); ok {
			return true
		}
	}
	return false
}

// globMatch matches a slash-separated pattern where "**" stands for any number of path
// elements (including none).
func globMatch(pattern, name string) bool {
	pp := strings.Split(pattern, "/")
	np := strings.Split(name, "/")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		for i < len(pp) {
			if pp[i] == "**" {
				for k := j; k <= len(np); k++ {
					if match(i+1, k) {
						return true
					}
				}
				return false
			}
			if j >= len(np) {
				return false
			}
			if ok, _ := path.Match(pp[i], np[j]); !ok {
				return false
			}
			i, j = i+1, j+1
		}
		return j == len(np)
	}
	return match(0, 0)
}
