package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
)

type versionCmd struct {
	JSON bool `help:"Print the version, commit, Go version and platform as a JSON object."`
}

// versionInfo is sbx version --json.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Dirty   bool   `json:"dirty,omitempty"` // built from a work tree with uncommitted changes
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// buildVersion describes this binary: the version set at link time (make build), else the
// module version, with the commit the Go toolchain recorded when built from a git checkout.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Dirty = s.Value == "true"
		}
	}
	return v
}

// versionLine is what sbx version and sbx --version print.
func versionLine() string {
	v := buildVersion()
	return fmt.Sprintf("sbx %s (%s, %s/%s)", v.Version, v.Go, v.OS, v.Arch)
}

func (c versionCmd) Run(a *app) error {
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(buildVersion())
	}
	fmt.Fprintln(a.stdout, versionLine())
	return nil
}
