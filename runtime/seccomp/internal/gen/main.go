//go:build linux

// Command gen writes runtime/seccomp's per-architecture filter tables
// (zfilter_GOARCH.go) from internal/policy. Run it with go generate in
// runtime/seccomp.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/sbx-dev/sbx/runtime/seccomp/internal/policy"
)

func main() {
	var arches []string
	for a := range policy.Arches {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	for _, a := range arches {
		src, err := policy.Source(a)
		if err == nil {
			err = os.WriteFile("zfilter_"+a+".go", src, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
