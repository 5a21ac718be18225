package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lgs"}, `sbx: unknown command "lgs": did you mean logs or ls?`},
		{[]string{"-C", ".", "--var", "a=b", "verison"}, `sbx: unknown command "verison": did you mean version?`},
		{[]string{"xyzzy"}, `sbx: unknown command "xyzzy"` + "\n"},
	} {
		out, errs, code := runIn(t, t.TempDir(), tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "sbx --help") {
			t.Errorf("sbx %v: exit %d, stderr:\n%s\nwant %q", tc.args, code, errs, tc.want)
		}
		if out != "" || strings.Contains(errs, "Commands:") {
			t.Errorf("sbx %v printed the help instead of one line:\n%s%s", tc.args, out, errs)
		}
	}
	// A known command's own usage errors are kong's, with its suggestion.
	_, errs, code := runIn(t, t.TempDir(), "ps", "--jsn")
	if code != 1 || !strings.Contains(errs, `did you mean "--json"`) {
		t.Errorf("ps --jsn: %d %s", code, errs)
	}
}

func TestClosestCommand(t *testing.T) {
	cmds := []string{"exec", "shell", "logs", "ps", "plan", "pull", "prune", "stats", "stop", "start", "version"}
	for word, want := range map[string][]string{
		"exe":    {"exec"},
		"st":     {"stats", "stop", "start"},
		"lgos":   {"logs"},
		"pul":    {"pull"},
		"verson": {"version"},
		"qqq":    nil,
		"x":      nil,
	} {
		if got := closest(word, cmds); !reflect.DeepEqual(got, want) {
			t.Errorf("closest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestVersionFlagAndJSON(t *testing.T) {
	flag, _, code := runIn(t, t.TempDir(), "--version")
	if code != 0 || !strings.HasPrefix(flag, "sbx ") {
		t.Fatalf("--version: %d %q", code, flag)
	}
	cmd, _, _ := runIn(t, t.TempDir(), "version")
	if cmd != flag {
		t.Errorf("sbx version says %q, sbx --version %q", cmd, flag)
	}
	out, _, code := runIn(t, t.TempDir(), "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("version --json: %d %v\n%s", code, err, out)
	}
	for _, k := range []string{"version", "go", "os", "arch"} {
		if s, _ := v[k].(string); s == "" {
			t.Errorf("version --json lacks %q: %s", k, out)
		}
	}
	if !strings.Contains(flag, v["version"].(string)) {
		t.Errorf("--version %q does not show version %q", flag, v["version"])
	}
}
