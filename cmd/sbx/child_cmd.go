package main

import (
	"context"
	"os"

	"github.com/sbx-dev/sbx/krun"
	"github.com/sbx-dev/sbx/runtime/ns"
)

// vmmCmd is the libkrun VMM child: it reads one VM config on stdin, configures libkrun,
// reports on fd 3 and enters the VM. It never runs in the process the user started.
type vmmCmd struct{}

func (vmmCmd) Run(a *app) error {
	var opts []krun.Option
	if path, ok := krun.LibraryPathFromEnv(); ok {
		opts = append(opts, krun.WithPath(path))
	}
	if err := krun.RunChild(context.Background(), os.Stdin, os.NewFile(krun.ReportFD, "report"), opts...); err != nil {
		return exitError{1} // already reported to the parent on the pipe
	}
	return nil
}

// nsCmd is the namespace child: PID 1 of a new set of namespaces, it prepares the root and
// becomes the payload's init.
type nsCmd struct{}

func (nsCmd) Run(a *app) error {
	if err := ns.RunChild(os.Stdin, os.NewFile(3, "report")); err != nil {
		return exitError{1} // already reported to the parent on the pipe
	}
	return nil
}
