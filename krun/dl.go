package krun

import "github.com/ebitengine/purego"

// purego is used rather than cgo so that the binary builds with
// CGO_ENABLED=0, cross-compiles to darwin without a C toolchain or libkrun
// headers, and loads libkrun only when a VM is actually started.

func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

func dlsym(h uintptr, name string) (uintptr, error) {
	return purego.Dlsym(h, name)
}

func dlclose(h uintptr) error {
	return purego.Dlclose(h)
}

func register(fptr any, sym uintptr) {
	purego.RegisterFunc(fptr, sym)
}
