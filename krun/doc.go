// Package krun is a Go binding of libkrun's C API, loaded at run time.
//
// The library is opened with dlopen through purego, so building a program that
// imports krun needs neither libkrun nor its headers, needs no cgo, and
// cross-compiles (linux and darwin). [Open] finds the library, resolves every
// function that microsandbox-core 0.2.6 declares plus upstream's additions
// (tap NICs, explicit vsock, listening vsock ports, build features), and
// reports which optional functions this particular build lacks;
// [Lib.NeedFeature] asks krun_has_feature what it was built with, since a
// function can be exported and do nothing.
//
// The package states facts about libkrun, never advice about its caller:
// every libkrun function that fails with a negative errno becomes an [*Error]
// naming the C function (errors.Is(err, syscall.EEXIST) works); a missing
// function is a [*MissingError] with the libkrun version that introduced it; a
// missing build feature is a [*FeatureError] with its build option ("NET=1");
// an unusable KVM device is a [*KVMError].
//
// krun_start_enter takes over its process and ends it with exit(). It must
// therefore only ever run in a dedicated child process: [Spawn] starts such a
// child (the caller's own binary re-executed) and hands it a [VMConfig] as
// JSON; [RunChild] is the child's side. An [Overlay] root is mounted by the
// child in a mount namespace of its own, so it never outlives the child.
//
// The package knows nothing about sbx: it takes paths, options and configs,
// and keeps no package-level mutable state.
package krun
