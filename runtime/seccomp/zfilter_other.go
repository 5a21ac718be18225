//go:build linux && !amd64 && !arm64

package seccomp

import "golang.org/x/sys/unix"

// filter is empty: go-seccomp-bpf has no syscall table for this
// architecture.
var filter []unix.SockFilter
