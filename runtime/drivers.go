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
// is the sbx binary, re-executed for the VMM child; the ns driver runs sbx-init
// (sbxinit.FindInit) as its namespace child instead.
func NewDriver(name, exe string, log *slog.Logger) (Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch name {
	case lang.DriverKrun, "":
		return &krunDriver{exe: exe, log: log}, nil
	case lang.DriverNS:
		return &nsDriver{log: log}, nil
	}
	return nil, fmt.Errorf("unknown driver %q: use %s", name, strings.Join(lang.DriverNames(), " or "))
}
