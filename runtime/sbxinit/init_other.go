//go:build !linux

package sbxinit

import (
	"fmt"
	"io"
	"os"
)

// Main is the init program; it runs only in a Linux sandbox.
func Main() { os.Exit(Run(ConfigPath, os.Stderr)) }

// Run reports that the init runs only on Linux.
func Run(configPath string, console io.Writer) int {
	fmt.Fprintln(console, "sbx-init: runs only inside a Linux sandbox")
	return ExitSetup
}

// Exit codes of the init itself, as Docker uses them.
const (
	ExitSetup         = 125
	ExitNotExecutable = 126
	ExitNotFound      = 127
)
