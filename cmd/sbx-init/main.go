// Command sbx-init is the first process of every sbx sandbox, on both drivers: libkrun execs
// it in the microVM, the ns driver runs it as PID 1 of the sandbox's namespaces (and, with
// the argument __ns, as the namespace child that builds the sandbox's root before that). It reads its
// run config from /.sbx/config.json (never from arguments), sets the sandbox up, runs the
// payload and serves the control socket; see package runtime/sbxinit.
//
// It is a separate, small static program rather than a mode of sbx: it is placed into every
// sandbox's root, and its start-up is on every sandbox's critical path (sbx's package
// initialisation alone takes about 3 ms; this program's well under 1 ms).
//
// The runtime neither reads the cgroup's CPU limit nor watches it: a sandbox's init has no
// use for the GOMAXPROCS it would give, and the file reads are on the start-up path.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"

	"github.com/sbx-dev/sbx/runtime/ns"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
)

func main() {
	// The ns driver's namespace child, which builds the sandbox's root and then executes
	// this program again, from the root, as the init: run from here rather than from sbx,
	// whose package initialisation alone costs several milliseconds on every start.
	if len(os.Args) > 1 && os.Args[1] == ns.ChildCommand {
		if err := ns.RunChild(os.Stdin, os.NewFile(3, "report")); err != nil {
			os.Exit(1) // already reported to the parent on the pipe
		}
		os.Exit(0)
	}
	sbxinit.Main()
}
