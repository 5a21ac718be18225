package runtime

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/sbx-dev/sbx/lang"
)

// Hidden sbx commands that become a sandbox's payload process.
const (
	KrunChildCommand = "__vmm" // the libkrun VMM child
	NSChildCommand   = "__ns"  // the namespace child
)

// NewDriver returns the driver called name (one of lang.DriverNames; "" is the default). exe
// is the sbx binary, re-executed for the payload process (the VMM child or the namespace
// child).
func NewDriver(name, exe string, log *slog.Logger) (Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch name {
	case lang.DriverKrun, "":
		return &krunDriver{exe: exe, log: log}, nil
	case lang.DriverNS:
		return &nsDriver{exe: exe, log: log}, nil
	}
	return nil, fmt.Errorf("unknown driver %q: use %s", name, strings.Join(lang.DriverNames(), " or "))
}
