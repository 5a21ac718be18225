//go:build linux && !amd64

package main

import "golang.org/x/sys/unix"

// iopl exists on x86 only.
func iopl() error { return unix.EPERM }
