package main

import (
	"strings"

	"github.com/agext/levenshtein"
	"github.com/alecthomas/kong"
)

// unknownCommand reports the word of args that stands where a command belongs when it names
// none: the first argument that is neither a global flag nor a global flag's value.
func unknownCommand(root *kong.Node, args []string) (string, bool) {
	takesValue := map[string]bool{}
	for _, f := range root.Flags {
		v := !f.Value.IsBool() && !f.Value.IsCounter()
		takesValue["--"+f.Name] = v
		if f.Short != 0 {
			takesValue["-"+string(f.Short)] = v
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return checkCommand(root, args[i+1])
			}
			return "", false
		case strings.HasPrefix(a, "-") && a != "-":
			if !strings.Contains(a, "=") && takesValue[a] {
				i++ // its value
			}
		default:
			return checkCommand(root, a)
		}
	}
	return "", false
}

func checkCommand(root *kong.Node, word string) (string, bool) {
	for _, c := range root.Children {
		if c.Name == word {
			return "", false
		}
		for _, al := range c.Aliases {
			if al == word {
				return "", false
			}
		}
	}
	return word, true
}

// suggestCommand is ": did you mean X?" naming the visible commands closest to word, or "" when
// none is close: those that word is a prefix of, else those within a few edits of it.
func suggestCommand(word string, root *kong.Node) string {
	var names []string
	for _, c := range root.Children {
		if !c.Hidden {
			names = append(names, c.Name)
			names = append(names, c.Aliases...)
		}
	}
	best := closest(word, names)
	switch len(best) {
	case 0:
		return ""
	case 1:
		return ": did you mean " + best[0] + "?"
	}
	return ": did you mean " + strings.Join(best[:len(best)-1], ", ") + " or " + best[len(best)-1] + "?"
}

// closest returns the candidates nearest to word: those that start with it (when word has at
// least two letters), else those at the smallest edit distance, if that distance is small
// for the word's length (half of it, at least one edit, at most three).
func closest(word string, candidates []string) []string {
	var out []string
	if len(word) >= 2 {
		for _, c := range candidates {
			if strings.HasPrefix(c, word) {
				out = append(out, c)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	limit := min(max(1, len(word)/2), 3)
	best := limit + 1
	for _, c := range candidates {
		d := levenshtein.Distance(strings.ToLower(word), c, nil)
		switch {
		case d > limit:
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out
}
