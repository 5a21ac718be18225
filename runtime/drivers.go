package runtime

import (
	"context"
	"fmt"
	"log/slog"
)

// Hidden sbx commands that become a sandbox's payload process.
const (
	KrunChildCommand = "__vmm" // the libkrun VMM child
	NSChildCommand   = "__ns"  // the namespace child
)

// NewDriver returns the driver called name. exe is the sbx binary, re-executed for the payload
// process (the VMM child or the namespace child).
func NewDriver(name, exe string, log *slog.Logger) (Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch name {
	case "krun", "":
		return &krunDriver{exe: exe, log: log}, nil
	case "ns":
		return &nsDriver{exe: exe, log: log}, nil
	}
	return nil, fmt.Errorf("unknown driver %q: use krun (microVMs) or ns (Linux namespaces)", name)
}

// Preflight checks that driver can run every sandbox of specs here, explaining each problem
// with its fix.
func Preflight(ctx context.Context, d Driver, specs []*RunSpec) error {
	for _, s := range specs {
		if err := d.Preflight(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
