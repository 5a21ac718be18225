package planner

import (
	"encoding/json"
	"testing"
)

// TestCanonicalMatchesJSON keeps the fast paths of canonical byte-identical to encoding/json,
// so fingerprints stay stable.
func TestCanonicalMatchesJSON(t *testing.T) {
	for _, v := range []any{"", "plain", "a\"b", "back\\slash", "<html>&", "tab\t", "é", "\u2028", 0, -12, 1 << 40} {
		want, _ := json.Marshal(v)
		if got := canonical(v); string(got) != string(want) {
			t.Errorf("%#v: %s, want %s", v, got, want)
		}
	}
}
