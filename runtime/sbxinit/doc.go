// Package sbxinit is sbx's in-sandbox init, shared by both drivers, and the client of its
// control socket.
//
// The runtime resolves a sandbox into a [Config] and writes it with [WriteConfig] into a
// directory that becomes an extra read-only lower layer of the sandbox's root (the init
// layer), next to the init program placed there by [InstallInit]:
//
//	<layer>/.sbx/init         the sbx-init binary (static, no cgo), mode 0555
//	<layer>/.sbx/config.json  the run config, mode 0600
//	<layer>/.sbx/shares/TAG/  empty mount points, one per virtiofs share
//	<layer>/.sbx/run/         mount point of the init's tmpfs (hosts, resolv.conf, hostname)
//	<layer>/.sbx/ctl/         mount point for the ns driver's host control directory
//
// Nothing of the config travels as arguments or environment: libkrun writes those on the
// kernel command line without escaping.
package sbxinit
