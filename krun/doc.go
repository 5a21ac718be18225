// Package krun is a Go binding of libkrun's C API, loaded at run time.
//
// The library is opened with dlopen through purego, so building a program that
// imports krun needs neither libkrun nor its headers, needs no cgo, and
// cross-compiles (linux and darwin). [Open] finds the library, resolves every
// function that microsandbox-core 0.2.6 declares plus the newer upstream ones,
// and reports which optional functions this particular build lacks.
//
// Every libkrun function that fails with a negative errno becomes an [*Error]
// naming the C function; it unwraps to the [syscall.Errno], so
// errors.Is(err, syscall.EEXIST) works.
//
// krun_start_enter takes over the calling process and ends it with exit(). It
// must therefore only ever run in a dedicated child process: [Spawn] starts such
// a child (the caller's own binary re-executed) and hands it a [VMConfig] as
// JSON; [RunChild] is the child's side.
//
// The package knows nothing about sbx: it takes paths, options and configs,
// and keeps no package-level mutable state.
package krun
