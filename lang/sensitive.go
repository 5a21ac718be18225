package lang

import "strings"

// IsSensitive reports whether the value of field derives from a sensitive variable: field is
// listed in s.Sensitive, or contains a listed field ("env" contains "env.TOKEN", "mounts[0]"
// contains "mounts[0].source").
func (s *Sandbox) IsSensitive(field string) bool {
	for _, f := range s.Sensitive {
		if f == field || strings.HasPrefix(f, field+".") || strings.HasPrefix(f, field+"[") {
			return true
		}
	}
	return false
}
