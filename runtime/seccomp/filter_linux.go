//go:build linux

package seccomp

//go:generate go run ./internal/gen

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Filter is the default filter's BPF program for this architecture, from
// the generated table (zfilter_GOARCH.go). The result is shared: do not
// modify it.
func Filter() ([]unix.SockFilter, error) {
	if len(filter) == 0 {
		return nil, fmt.Errorf("no seccomp filter for %s: sbx's sandboxes need one (generate it in runtime/seccomp with an architecture go-seccomp-bpf knows)", runtime.GOARCH)
	}
	return filter, nil
}
