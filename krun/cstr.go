package krun

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// cmem holds C strings and string arrays built for one libkrun call. All
// bytes live in Go heap objects (which the Go collector never moves) that are
// referenced from cmem until keepAlive, so the addresses handed to C stay
// valid for the duration of the call. Pointer arrays are []uintptr, so no Go
// memory handed to C contains Go pointers.
type cmem struct {
	fn   string
	bufs [][]byte
	arrs [][]uintptr
	err  error
}

func newCmem(fn string) *cmem { return &cmem{fn: fn} }

// str returns a pointer to a NUL-terminated copy of s. An empty s is passed
// as an empty C string; use optStr where "" means NULL.
func (m *cmem) str(arg, s string) uintptr {
	if strings.IndexByte(s, 0) >= 0 {
		if m.err == nil {
			m.err = fmt.Errorf("%s: argument %s (%q) contains a NUL byte: %w", m.fn, arg, s, ErrInvalidArgument)
		}
		return 0
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	m.bufs = append(m.bufs, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// optStr is str, except that "" becomes NULL.
func (m *cmem) optStr(arg, s string) uintptr {
	if s == "" {
		return 0
	}
	return m.str(arg, s)
}

// strv returns a NULL-terminated array of C strings. A nil slice becomes a
// NULL pointer and a non-nil empty slice an array holding only NULL: libkrun
// gives the two different meanings (e.g. port map NULL = expose every port,
// empty = expose none; envp NULL = inherit the environment, empty = none).
func (m *cmem) strv(arg string, ss []string) uintptr {
	if ss == nil {
		return 0
	}
	a := make([]uintptr, len(ss)+1)
	for i, s := range ss {
		a[i] = m.str(fmt.Sprintf("%s[%d]", arg, i), s)
	}
	m.arrs = append(m.arrs, a)
	return uintptr(unsafe.Pointer(&a[0]))
}

// bytes returns a pointer to a copy of b.
func (m *cmem) bytes(b []byte) uintptr {
	c := make([]byte, len(b)+1)
	copy(c, b)
	m.bufs = append(m.bufs, c)
	return uintptr(unsafe.Pointer(&c[0]))
}

// keepAlive marks the memory as in use up to this point; call it after the C
// function returns.
func (m *cmem) keepAlive() {
	runtime.KeepAlive(m.bufs)
	runtime.KeepAlive(m.arrs)
}
